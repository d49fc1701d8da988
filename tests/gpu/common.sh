# Shared by the GPU scripts (sourced, with build and out set): libraries, environment, and
# step NAME SECONDS CMD..., which runs CMD with a time limit, records its exit code in
# OUT/summary.txt and appends its output to OUT/all.log.
cuda_libs=$(dirname "$(find /usr/local/cuda*/ /usr/lib /opt -name 'libcublasLt.so.13' 2>/dev/null | head -n 1)")
# libnccl.so.2 (the --merge-transport nccl build links it) comes from PyTorch's nvidia-nccl wheel.
nccl_libs=$(python3 -c 'import nvidia.nccl as n, os; print(os.path.join(list(n.__path__)[0], "lib"))' 2>/dev/null ||
  dirname "$(find / -name 'libnccl.so.2' -not -path '/proc/*' 2>/dev/null | head -n 1)")
# cuDNN (the prefill attention loads it when found) from PyTorch's nvidia-cudnn wheel, the one
# PyTorch itself runs, ahead of any older system copy.
cudnn_libs=$(python3 -c 'import nvidia.cudnn as c, os; print(os.path.join(list(c.__path__)[0], "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH=$build/lib:$cuda_libs:$nccl_libs${cudnn_libs:+:$cudnn_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=8
export STARINFER_FIXTURES=$PWD/tests/fixtures NCCL_NVLS_ENABLE=0
logs=$(mktemp -d)
mkdir -p "$out"
export STARINFER_TEST_DEVICE=cuda
summary=$out/summary.txt
: >"$summary"
: >"$out/all.log"
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  printf '%-28s exit %-3s %4ss\n' "$name" "$rc" "$((SECONDS - t0))" | tee -a "$summary"
  { echo "=== $name (exit $rc)"; tail -c 20000 "$logs/$name.log"; } >>"$out/all.log"
  return $rc
}
mpirun=(mpirun --oversubscribe --bind-to none --mca btl self,vader,tcp --mca btl_tcp_if_include lo
  --mca oob_tcp_if_include lo)
