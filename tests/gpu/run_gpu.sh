#!/usr/bin/env bash
# Everything the GPU machine checks, in one go (run from the repository root there):
#   bash tests/gpu/run_gpu.sh BUILD_DIR OUT_DIR [--skip-8b]
# BUILD_DIR holds a build of this tree (and, in BUILD_DIR/lib, shared libraries the machine
# lacks). Writes logs and a summary under OUT_DIR.
set -uo pipefail
build=$1 out=$2
shift 2
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
nvidia-smi -L | tee -a "$summary"
step gpu_ops 120 "$build/tests/gpu/test_gpu_ops"
STARINFER_CUDNN=0 step gpu_ops_own_kernels 120 "$build/tests/gpu/test_gpu_ops"
step gpu_ops_fp32 120 "$build/tests/gpu/test_gpu_ops" --fp32
step gpu_model_fixtures 120 "$build/tests/test_model"
STARINFER_TEST_DEVICE=cuda-fp32 step gpu_model_fixtures_fp32 120 "$build/tests/test_model"
# --dtype fp32: the accuracy model's greedy answers on the GPU are the CPU's, token for token
# (both backends run here, global and Star with blocks of n/4; one sample of each task).
step gpu_fp32_same_answers 300 python3 bench/accuracy/compare_backends.py --out "$out/fp32_answers" \
  --work /tmp/fp32_answers --starinfer "$build/starinfer" --lengths 2048 --samples 1 --dtype fp32 \
  --jobs 4 --threads 4 --require-identical
step gpu_star_np2 60 "${mpirun[@]}" -np 2 "$build/tests/mpi/test_star"
step gpu_star_np3 60 "${mpirun[@]}" -np 3 "$build/tests/mpi/test_star"
step gpu_generate 60 "$build/starinfer" generate --device cuda --model tests/fixtures/models/tiny-llama3 \
  --prompt "Hello there" --max-new-tokens 8 --json
step gpu_refuse_shared 60 bash tests/gpu/checks.sh shared-refused "$build"
step gpu_sampled_repeats 60 bash tests/gpu/checks.sh sampled-repeats "$build" 7
step gpu_refuse_nccl_shared 60 bash tests/gpu/checks.sh nccl-shared-refused "$build"
if [[ ${1:-} != --skip-8b ]]; then
  step make_8b 240 python3 tests/gpu/make_8b_reference.py /tmp/g8 &&
    STARINFER_FIXTURES=/tmp/g8 STARINFER_TEST_MODELS=llama8b step gpu_model_8b 240 "$build/tests/test_model"
  # The same model stored in F16, as older checkpoints are (rounded to bf16 on the GPU).
  step make_8b_f16 240 python3 tests/gpu/f16_copy.py /tmp/g8/models/llama8b /tmp/g8f16/models/llama8b &&
    cp -r /tmp/g8/reference /tmp/g8f16/ &&
    STARINFER_FIXTURES=/tmp/g8f16 STARINFER_TEST_MODELS=llama8b step gpu_model_8b_f16 240 "$build/tests/test_model"
  # A plan that cannot fit (logits for a million-token chunk) is refused before allocating.
  step gpu_refuse_plan 120 bash tests/gpu/checks.sh plan-refused "$build" /tmp/g8/models/llama8b
fi
grep -h "bf16 vs fp32\|max relative\|nrmse\|FAIL\|vs reference\|union" "$logs"/*.log | head -80 >"$out/details.txt"
