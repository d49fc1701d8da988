#!/usr/bin/env bash
# Everything the GPU machine checks, in one go (run from the repository root there):
#   bash tests/gpu/run_gpu.sh BUILD_DIR OUT_DIR [--skip-8b]
# BUILD_DIR holds a build of this tree (and, in BUILD_DIR/lib, shared libraries the machine
# lacks). Writes logs and a summary under OUT_DIR.
set -uo pipefail
build=$1 out=$2
shift 2
cuda_libs=$(dirname "$(find /usr/local/cuda*/ /usr/lib /opt -name 'libcublasLt.so.13' 2>/dev/null | head -n 1)")
export LD_LIBRARY_PATH=$build/lib:$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=8
export STARINFER_FIXTURES=$PWD/tests/fixtures
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
step() {
  local name=$1
  shift
  local t0=$SECONDS
  "$@" >"$out/$name.log" 2>&1
  local rc=$?
  printf '%-28s exit %-3s %4ss\n' "$name" "$rc" "$((SECONDS - t0))" | tee -a "$summary"
  return $rc
}
nvidia-smi -L | tee -a "$summary"
step gpu_ops "$build/tests/gpu/test_gpu_ops"
STARINFER_TEST_DEVICE=cuda step gpu_model_fixtures "$build/tests/test_model"
STARINFER_TEST_DEVICE=cuda step gpu_star_np2 mpirun --oversubscribe -np 2 "$build/tests/mpi/test_star"
STARINFER_TEST_DEVICE=cuda step gpu_star_np3 mpirun --oversubscribe -np 3 "$build/tests/mpi/test_star"
step gpu_generate "$build/starinfer" generate --device cuda --model tests/fixtures/models/tiny-llama3 \
  --prompt "Hello there" --max-new-tokens 8 --json
step gpu_refuse_shared mpirun --oversubscribe -np 2 "$build/starinfer" run --device cuda \
  --model tests/fixtures/models/tiny-llama3 --context tests/fixtures/make_fixtures.py --query "Why?"
if [[ ${1:-} != --skip-8b ]]; then
  step make_8b python3 tests/gpu/make_8b_reference.py /tmp/g8 &&
    STARINFER_FIXTURES=/tmp/g8 STARINFER_TEST_MODELS=llama8b STARINFER_TEST_DEVICE=cuda \
      step gpu_model_8b "$build/tests/test_model"
  # A plan that cannot fit (logits for a million-token chunk) is refused before allocating.
  step gpu_refuse_plan mpirun -np 1 "$build/starinfer" run --device cuda --model /tmp/g8/models/llama8b \
    --context tests/fixtures/make_fixtures.py --query "Why?" --chunk 1000000
fi
grep -h "max relative\|nrmse\|FAIL\|vs reference\|union" "$out"/*.log | head -80 >"$out/details.txt"
