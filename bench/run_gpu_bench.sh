#!/usr/bin/env bash
# The 8B-shaped benchmark on one GPU (run from the repository root on the GPU machine):
#   bash bench/run_gpu_bench.sh BUILD_DIR OUT_DIR
# Llama-3.1-8B shape with seeded random bf16 weights, global attention on one rank, contexts of
# 16K to 128K tokens (a length whose KV cache does not fit is refused by the memory plan and
# reported with an "error" field), 1 warm-up + 3 measured runs, 32 decoded tokens each. Appends
# OUT_DIR/starinfer_bench.jsonl, writes the markdown table to OUT_DIR/starinfer_bench.md and the
# log to OUT_DIR/all.log. Bounded to under 5 minutes; lines of finished lengths are kept.
set -uo pipefail
build=$1 out=$2
source "$(dirname "${BASH_SOURCE[0]}")/../tests/gpu/common.sh"
nvidia-smi -L | tee -a "$summary"
step bench_8b_global 280 "${mpirun[@]}" -np 1 "$build/starinfer" bench --device cuda \
  --shape llama-3.1-8b --attn global --lengths 16384,32768,65536,131072 --repeat 3 --warmup 1 \
  --decode-tokens 32 --chunk 4096 --json "$out/starinfer_bench.jsonl"
grep "^|" "$logs/bench_8b_global.log" >"$out/starinfer_bench.md"
cat "$out/starinfer_bench.md"
