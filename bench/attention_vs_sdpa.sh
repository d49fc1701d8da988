#!/usr/bin/env bash
# The prefill attention against PyTorch's SDPA on the same GPU, in one run:
#   bash bench/attention_vs_sdpa.sh BIN_DIR OUT_DIR
# BIN_DIR holds bench_attention (a build's bench/ folder). Runs both row tilings of our kernel
# (16 and 32 rows per warp) with 8 and 32 KV heads, cuDNN's fused kernel as starinfer calls it,
# then SDPA (its flash and cuDNN backends), all at 16K and 64K tokens, batch 1, 32 query heads,
# head dim 128, causal. TFLOP/s count the causal half, 4 n^2 / 2 * d * heads.
set -euo pipefail
bin=$1 out=$2
mkdir -p "$out"
for rows in 16 32; do
  for kv in 8 32; do
    STARINFER_CUDNN=0 STARINFER_ATTN_ROWS_PER_WARP=$rows "$bin/bench_attention" \
      --lengths 16384,65536 --kv-heads "$kv" --reps 5 --tests prefill \
      --json "$out/attn_${rows}_kv$kv.jsonl"
  done
done
# cuDNN's fused kernel as starinfer calls it (where cuDNN is found: see its "impl" field)
for kv in 8 32; do
  "$bin/bench_attention" --lengths 16384,65536 --kv-heads "$kv" --reps 5 --tests prefill \
    --json "$out/attn_cudnn_kv$kv.jsonl"
done
python3 - "$out/sdpa.jsonl" <<'PY'
import json, sys
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

with open(sys.argv[1], "w") as out:
    for n, name in ((n, name) for n in (16384, 65536) for name in ("flash", "cudnn")):
        q = torch.randn(1, 32, n, 128, device="cuda", dtype=torch.bfloat16)
        k, v = torch.randn_like(q), torch.randn_like(q)
        times = []
        backend = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}[name]
        with sdpa_kernel(backend):
            for i in range(7):  # 2 warm-ups, then the best of 5
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                F.scaled_dot_product_attention(q, k, v, is_causal=True)
                b.record()
                torch.cuda.synchronize()
                if i >= 2:
                    times.append(a.elapsed_time(b) / 1e3)
        best = min(times)
        rec = {"kind": "sdpa", "backend": name, "n": n, "heads": 32, "head_dim": 128,
               "best_s": best, "tflops": 4 * n * n / 2 * 128 * 32 / best / 1e12,
               "torch": torch.__version__, "gpu": torch.cuda.get_device_name()}
        print(json.dumps(rec))
        out.write(json.dumps(rec) + "\n")
PY
