#!/usr/bin/env bash
# One GPU session of the speed comparison, from the repository root of the GPU machine:
#   bash bench/gpu_session.sh OUT [--bin DIR] [--budget SECONDS]
# DIR (default .carry/gpu, as gathered by tests/gpu/carry.sh) holds the starinfer binary and, in
# DIR/lib, the shared libraries the machine lacks. Runs, each step timed and logged to OUT/NAME.log
# (exit codes and seconds in OUT/summary.txt), going on past a failed step:
#   1. bench/hf_baseline.py: Transformers + SDPA, Llama-3.1-8B shape, 16K-128K, GEMM/copy rates,
#      SDPA flash alone                                                    -> OUT/hf.jsonl
#   2. starinfer bench, the same shape and lengths, global attention (64K and 128K also beside
#      the matrix rate sustained for 5 s)                                -> OUT/starinfer.jsonl
#   3. with two GPUs or more: Star Attention on 2 ranks at 128K (anchor = block, and 4K; then
#      the 4K anchor again with the NCCL merge)
#   4. bench/compare.py                                                   -> OUT/compare.md
# About 6 minutes on one H100 (64K and 128K are repeated twice, the shorter lengths three times).
# Each step has a time limit, cut so that the whole session ends within --budget (default 540 s);
# a step with less than 30 s left is skipped (and listed in summary.txt).
set -uo pipefail
out=${1:?usage: bash bench/gpu_session.sh OUT [--bin DIR]}
shift
bin=.carry/gpu budget=540
while (($#)); do
  case $1 in
  --bin) bin=${2:?--bin needs a folder} && shift 2 ;;
  --budget) budget=${2:?--budget needs seconds} && shift 2 ;;
  *) echo "gpu_session: unknown option '$1'; usage: bash bench/gpu_session.sh OUT [--bin DIR]" >&2 && exit 2 ;;
  esac
done
if ! [[ $budget =~ ^[0-9]+$ ]]; then
  echo "gpu_session: --budget '$budget': give whole seconds" >&2
  exit 2
fi
if [[ ! -x $bin/starinfer ]]; then
  echo "gpu_session: no starinfer in '$bin'; gather one with 'bash tests/gpu/carry.sh $bin' or give --bin DIR" >&2
  exit 2
fi
build=$bin
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../tests/gpu/common.sh"
logs=$out # every step's log lands in OUT/NAME.log
{
  "$bin/starinfer" --version # the commit the binary was built from
  nvidia-smi -L
} | tee -a "$summary"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
# timed NAME LIMIT CMD...: step with LIMIT cut to what is left of the budget (30 s kept for the end).
timed() {
  local name=$1 limit=$2 left=$((budget - SECONDS - 30))
  shift 2
  if ((left < 30)); then
    echo "$name skipped: the session's budget of $budget s is spent" | tee -a "$summary"
    failed=$((failed + 1))
    return
  fi
  step "$name" $((limit < left ? limit : left)) "$@" || failed=$((failed + 1))
}
failed=0

shape=(--shape llama-3.1-8b --query-tokens 32 --decode-tokens 32 --warmup 1)
timed hf_short 180 python3 "$here/hf_baseline.py" "${shape[@]}" --lengths 16384,32768 --repeat 3 \
  --rates --sdpa-kernel --json "$out/hf.jsonl"
timed hf_long 180 python3 "$here/hf_baseline.py" "${shape[@]}" --lengths 65536,131072 --repeat 2 \
  --json "$out/hf.jsonl"
timed starinfer_short 150 "$bin/starinfer" bench "${shape[@]}" --attn global --device cuda \
  --lengths 16384,32768 --repeat 3 --json "$out/starinfer.jsonl"
timed starinfer_long 215 "$bin/starinfer" bench "${shape[@]}" --attn global --device cuda \
  --lengths 65536,131072 --repeat 2 --sustained 5 --json "$out/starinfer.jsonl"
if ((gpus >= 2)); then
  timed star_np2 240 "${mpirun[@]}" -np 2 "$bin/starinfer" bench "${shape[@]}" --attn star \
    --device cuda --lengths 131072 --block-size 16384 --anchor-size 16384,4096 --repeat 2 \
    --json "$out/starinfer.jsonl"
  timed star_np2_nccl 150 "${mpirun[@]}" -np 2 "$bin/starinfer" bench "${shape[@]}" --attn star \
    --device cuda --lengths 131072 --block-size 16384 --anchor-size 4096 --repeat 2 \
    --merge-transport nccl --json "$out/starinfer.jsonl"
fi
step compare 60 python3 "$here/compare.py" "$out/starinfer.jsonl" "$out/hf.jsonl" --md "$out/compare.md" ||
  failed=$((failed + 1))
cat "$out/compare.md" 2>/dev/null
echo "gpu_session: $failed failed steps; logs and results in $out (summary.txt, compare.md, *.jsonl, *.log)" >&2
exit $((failed > 0))
