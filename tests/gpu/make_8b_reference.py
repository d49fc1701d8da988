#!/usr/bin/env python3
"""A Llama-3.1-8B-shaped model with random bf16 weights, saved as a normal Hugging Face directory,
and the reference's logits for a 2K-token prompt, in the layout tests/test_model.c reads:
    OUT/models/llama8b/   config.json, model-*.safetensors (+ index), tokenizer files
    OUT/reference/llama8b.json, llama8b-random.bin
Run on a GPU machine (never committed: 16 GB):  python3 tests/gpu/make_8b_reference.py OUT
The reference computes in fp32 on exactly the saved bf16 weights."""
import json
import os
import shutil
import sys

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

out = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
tokenizer_dir = os.path.join(here, "..", "fixtures", "tokenizer")
model_dir = os.path.join(out, "models", "llama8b")
ref_dir = os.path.join(out, "reference")
os.makedirs(model_dir, exist_ok=True)
os.makedirs(ref_dir, exist_ok=True)

cfg = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
                  rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False,
                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                  bos_token_id=991, eos_token_id=[995, 992], attn_implementation="sdpa")
torch.manual_seed(8)
with torch.device("cuda"):
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
model.save_pretrained(model_dir, max_shard_size="5GB")
for f in os.listdir(tokenizer_dir):
    if f.startswith("tokenizer"):
        shutil.copy(os.path.join(tokenizer_dir, f), model_dir)

# .to(bfloat16) also rounded the rotary frequencies (a buffer); the reference recomputes them in
# fp32 as a model loaded from disk does.
model = model.float().eval()
model.model.rotary_emb = type(model.model.rotary_emb)(config=cfg, device="cuda")
gen = torch.Generator().manual_seed(81)
ids = torch.randint(0, 128000, (2048,), generator=gen).tolist()
ids[0] = 991
with torch.no_grad():
    logits = model(torch.tensor([ids], device="cuda")).logits[0].float().cpu().numpy()
rows = sorted(set(list(range(0, len(ids), 256)) + list(range(len(ids) - 4, len(ids)))))

# Transformers' own bf16 inference on the same weights, against its fp32: the precision floor a
# bf16 runtime is judged by (same metric as tests/test_model.c: max |a - r| / max |r| per row).
model = model.to(torch.bfloat16)
model.model.rotary_emb = type(model.model.rotary_emb)(config=cfg, device="cuda")
with torch.no_grad():
    bf16 = model(torch.tensor([ids], device="cuda")).logits[0].float().cpu().numpy()
bf16_error = max(float(np.abs(bf16[r] - logits[r]).max() / np.abs(logits[r]).max()) for r in rows)
print(f"Transformers bf16 vs fp32: max relative logit error {bf16_error:.2e}")
np.ascontiguousarray(logits[rows], dtype="<f4").tofile(os.path.join(ref_dir, "llama8b-random.bin"))
top2 = np.sort(logits[-1])[-2:]
with open(os.path.join(ref_dir, "llama8b.json"), "w") as f:
    json.dump({"model": "llama8b", "vocab_size": cfg.vocab_size,
               "cases": [{"case": "random", "text": "", "ids": ids, "rows": rows,
                          "logits": "llama8b-random.bin", "greedy": [int(np.argmax(logits[-1]))],
                          "last_top2_gap": float(top2[1] - top2[0]),
                          "reference_bf16_error": bf16_error}]}, f)
print("8B-shaped reference written to", out)
