#!/usr/bin/env python3
"""An F16 copy of a Hugging Face directory of bf16 safetensors, as older checkpoints are stored
(config.json's dtype says float16; the other files are copied). Counts, per shard, the nonzero
values below F16's normal range, which the copy rounds into subnormals (or to zero).
    python3 tests/gpu/f16_copy.py SRC_DIR DST_DIR"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for name in sorted(os.listdir(src)):
    path = os.path.join(src, name)
    if name.endswith(".safetensors"):
        tensors = load_file(path)
        tiny = sum(int(((t != 0) & (t.abs() < 2**-14)).sum()) for t in tensors.values())
        save_file({k: t.to(torch.float16) for k, t in tensors.items()}, os.path.join(dst, name),
                  metadata={"format": "pt"})
        print(name, "values below f16's normal range:", tiny)
    elif name == "config.json":
        with open(path) as f:
            cfg = json.load(f)
        cfg["torch_dtype"] = "float16"  # Transformers 4's key; 5 writes "dtype"
        if "dtype" in cfg:
            cfg["dtype"] = "float16"
        with open(os.path.join(dst, name), "w") as f:
            json.dump(cfg, f, indent=2)
    else:
        shutil.copy(path, dst)
