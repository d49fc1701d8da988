#!/usr/bin/env python3
"""Transformers' side of bench/load_time.sh: a Hugging Face model directory loaded onto the GPU as
its users load one, then one greedy token, each step timed in one process.

  import_s      importing torch and transformers
  load_s        AutoModelForCausalLM.from_pretrained(DIR, bf16, device_map="cuda"), synchronized
  first_token_s one forward over five fixed token ids (not starinfer's prompt: the token it
                prints shows the forward ran, it is not compared) and its greedy token
  process_s     from the interpreter's start to the first token (the shell adds its own start)

Prints one JSON line.  python3 bench/hf_load.py --model DIR --run 1
"""
import time

start = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

imported = time.perf_counter()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--run", type=int, default=1)
    a = ap.parse_args()
    t0 = time.perf_counter()
    try:
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, device_map="cuda")
    except TypeError:  # Transformers 4 names it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16,
                                                     device_map="cuda")
    torch.cuda.synchronize()
    t1 = time.perf_counter()
    bos = model.config.bos_token_id if isinstance(model.config.bos_token_id, int) else 1
    ids = torch.tensor([[bos, 100, 200, 300, 400]], device="cuda")
    with torch.no_grad():
        token = int(model(ids).logits[0, -1].argmax())
    torch.cuda.synchronize()
    t2 = time.perf_counter()
    print(json.dumps({"who": "transformers", "run": a.run, "version": transformers.__version__,
                      "import_s": imported - start, "load_s": t1 - t0, "first_token_s": t2 - t1,
                      "process_s": t2 - start, "token": token}), flush=True)


main()
