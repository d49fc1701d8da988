#!/usr/bin/env python3
"""Trains the accuracy model: a small Hugging Face LlamaForCausalLM on the RULER-style task mixture.

Each training document is BOS + context + query + answer + EOS, tokenized as `starinfer eval
--chat-template none` tokenizes a request (context with BOS, then the query on its own, no
separator), so the model learns exactly the layout it is evaluated on. The loss is the mean
cross-entropy of the answer tokens (and EOS) plus LM_WEIGHT times the mean cross-entropy of the
context and query tokens. Documents come from tasks.py with training seeds only (2**32 and up).

Training is bounded in time and resumable: `--minutes M` ends this run (start-up included) with a
checkpoint early enough to fit M minutes; `--resume` continues from the checkpoint. The learning
rate and the length curriculum follow the fraction of `--budget-minutes` of training time spent
so far, summed over all runs, so the schedule is the same however the time is split into runs.
The checkpoint (fp32 weights, AdamW moments in bf16, the data position) is a folder of files
under 16 MiB each. `--export DIR` writes the checkpoint as a Hugging Face model directory in
bf16 (config.json, model.safetensors, generation_config.json; the tokenizer from
make_tokenizer.py must already be there).

  python3 bench/accuracy/train.py --ckpt bench/accuracy/ckpt --minutes 8 --budget-minutes 15
  python3 bench/accuracy/train.py --ckpt bench/accuracy/ckpt --minutes 8 --budget-minutes 15 --resume
  python3 bench/accuracy/train.py --ckpt bench/accuracy/ckpt --export bench/accuracy/model
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import sys
import time
from collections import deque

START = time.time()
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tasks  # noqa: E402

# Documents of each task, per 100 (more where the task is harder).
TASK_WEIGHTS = {
    "niah_single_1": 8, "niah_single_2": 12, "niah_single_3": 10, "niah_multikey_1": 12,
    "niah_multikey_2": 8, "niah_multikey_3": 8, "niah_multivalue": 10, "niah_multiquery": 10,
    "vt": 11, "cwe": 11,
}
SHARD_BYTES = 12 << 20

# ---------------------------------------------------------------- data (worker processes)
_gen = None
_ids = {}


def _worker_init(tokenizer_path, data_dir):
    global _gen
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer_path)
    _gen = tasks.Generator(tok, data_dir)
    _ids["bos"] = tok.token_to_id("<|begin_of_text|>")
    _ids["eos"] = tok.token_to_id("<|end_of_text|>")


def pick_task(rng):
    r = rng.random() * sum(TASK_WEIGHTS.values())
    for t, w in TASK_WEIGHTS.items():
        r -= w
        if r < 0:
            return t
    return tasks.TASKS[-1]


def make_doc(length, seed):
    """Token ids and loss codes (0 none, 1 context, 2 answer) of one document of at most
    LENGTH tokens."""
    rng = random.Random(seed)
    task = pick_task(rng)
    enc = lambda s: _gen.tok.encode(s, add_special_tokens=False).ids  # noqa: E731
    target = length - 44  # room for the answer
    for _ in range(6):
        s = _gen.sample(task, target, seed, exact=False)
        ctx, q, a = enc(s["context"]), enc(s["query"]), enc(s["target"])
        ids = [_ids["bos"]] + ctx + q + a + [_ids["eos"]]
        if len(ids) <= length:
            break
        target -= len(ids) - length + 8
    ids = ids[:length]
    codes = [1] * (1 + len(ctx) + len(q) - 1) + [2] * (len(a) + 1)
    return ids, codes[:len(ids) - 1], tasks.TASKS.index(task)


def make_batch(job):
    import numpy as np
    length, seeds = job
    ids = np.full((len(seeds), length), _ids["eos"], dtype=np.int32)
    codes = np.zeros((len(seeds), length - 1), dtype=np.uint8)
    task_ids = np.zeros(len(seeds), dtype=np.int16)
    for i, seed in enumerate(seeds):
        d, c, t = make_doc(length, seed)
        ids[i, :len(d)] = d
        codes[i, :len(c)] = c
        task_ids[i] = t
    return ids, codes, task_ids


# ---------------------------------------------------------------- model and checkpoint
def model_config(args, tok_path):
    from tokenizers import Tokenizer
    from transformers import LlamaConfig
    tok = Tokenizer.from_file(tok_path)
    return LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=args.hidden, intermediate_size=args.ffn,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads, head_dim=args.hidden // args.heads,
        max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=args.rope_theta,
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
        bos_token_id=tok.token_to_id("<|begin_of_text|>"),
        eos_token_id=tok.token_to_id("<|end_of_text|>"), initializer_range=0.02)


def save_shards(tensors, prefix, folder):
    """Writes a dict of tensors as PREFIX-00.safetensors, -01, ..., each at most SHARD_BYTES."""
    from safetensors.torch import save_file
    shard, size, n = {}, 0, 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if shard and size + t.numel() * t.element_size() > SHARD_BYTES:
            save_file(shard, os.path.join(folder, f"{prefix}-{n:02d}.safetensors"))
            shard, size, n = {}, 0, n + 1
        shard[name] = t
        size += t.numel() * t.element_size()
    save_file(shard, os.path.join(folder, f"{prefix}-{n:02d}.safetensors"))


def load_shards(prefix, folder):
    from safetensors.torch import load_file
    out = {}
    for f in sorted(os.listdir(folder)):
        if f.startswith(prefix + "-") and f.endswith(".safetensors"):
            out.update(load_file(os.path.join(folder, f)))
    return out


def save_checkpoint(folder, model, opt, state):
    import torch
    tmp = folder + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    names = {p: n for n, p in model.named_parameters()}
    save_shards({n: p.float() for n, p in model.named_parameters()}, "weights", tmp)
    m, v = {}, {}
    for p, st in opt.state.items():
        if "exp_avg" in st:
            m[names[p]] = st["exp_avg"].to(torch.bfloat16)
            v[names[p]] = st["exp_avg_sq"].to(torch.bfloat16)
    if m:
        save_shards(m, "adam_m", tmp)
        save_shards(v, "adam_v", tmp)
    with open(os.path.join(tmp, "state.json"), "w") as f:
        json.dump(state, f, indent=1)
    if os.path.isdir(folder):
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        os.rmdir(folder)
    os.rename(tmp, folder)


def load_checkpoint(folder, model, opt, device):
    import torch
    w = load_shards("weights", folder)
    missing = model.load_state_dict({k: v.to(device) for k, v in w.items()}, strict=False)
    assert not [k for k in missing.missing_keys if "lm_head" not in k], missing
    with open(os.path.join(folder, "state.json")) as f:
        state = json.load(f)
    m, v = load_shards("adam_m", folder), load_shards("adam_v", folder)
    if opt is not None and m:
        for n, p in model.named_parameters():
            # Fused AdamW keeps the step count on the parameters' device.
            step_device = device if opt.defaults.get("fused") else "cpu"
            opt.state[p] = {"step": torch.tensor(float(state["step"]), device=step_device),
                            "exp_avg": m[n].to(device, torch.float32),
                            "exp_avg_sq": v[n].to(device, torch.float32)}
    return state


def export(args):
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM
    tok_path = os.path.join(args.export, "tokenizer.json")
    with open(os.path.join(args.ckpt, "state.json")) as f:
        state = json.load(f)
    for k, v in state["model"].items():
        setattr(args, k, v)
    cfg = model_config(args, tok_path)
    model = LlamaForCausalLM(cfg)
    load_checkpoint(args.ckpt, model, None, "cpu")
    model.tie_weights()
    model = model.to(torch.bfloat16)
    model.save_pretrained(args.export)
    from tokenizers import Tokenizer
    eot = Tokenizer.from_file(tok_path).token_to_id("<|eot_id|>")
    GenerationConfig(bos_token_id=cfg.bos_token_id, eos_token_id=[cfg.eos_token_id, eot],
                     do_sample=False).save_pretrained(args.export)
    n = sum(p.numel() for p in model.parameters())
    print(f"train: exported {n / 1e6:.2f}M parameters (step {state['step']}, "
          f"{state['train_s'] / 60:.1f} min of training) to {args.export}")


# ---------------------------------------------------------------- training
def schedule(args, progress):
    """The learning-rate factor and the longest documents at PROGRESS (0..1 of the budget)."""
    lens = [min(L, args.max_len) for frac, L in
            ((0.0, 1024), (0.04, 2048), (0.11, 4096), (0.225, args.max_len)) if progress >= frac]
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return args.min_lr_frac + (1 - args.min_lr_frac) * cos, lens[-1]


def batch_length(rng, max_len, long_frac):
    """The longest length allowed now (LONG_FRAC of the batches), else a shorter one."""
    if rng.random() < long_frac or max_len <= 512:
        return max_len
    return rng.choice([L for L in (512, 1024, 2048, 4096, 8192) if L < max_len])


def quick_eval(model, gen, device, lengths, samples, max_time_s):
    """Greedy answers with global attention for held-out samples: a progress check."""
    import torch
    bos = gen.tok.token_to_id("<|begin_of_text|>")
    eos = gen.tok.token_to_id("<|end_of_text|>")
    t0 = time.time()
    res = {}
    model.eval()
    with torch.no_grad(), torch.autocast("cuda" if device == "cuda" else "cpu", dtype=torch.bfloat16):
        for L in lengths:
            for task in tasks.TASKS:
                scores = []
                for i in range(samples):
                    if time.time() - t0 > max_time_s:
                        break
                    s = gen.sample(task, L, tasks.eval_seed(task, L, i))
                    ids = [bos] + gen.tok.encode(s["context"], add_special_tokens=False).ids
                    ids += gen.tok.encode(s["query"], add_special_tokens=False).ids
                    x = torch.tensor([ids], device=device)
                    out = model.generate(x, max_new_tokens=s["max_new_tokens"], do_sample=False,
                                         eos_token_id=eos, pad_token_id=eos)
                    text = gen.tok.decode(out[0, len(ids):].tolist(), skip_special_tokens=True)
                    scores.append(tasks.score(text, s["answers"]) == 1.0)
                if scores:
                    res[f"{task}@{L}"] = sum(scores) / len(scores)
    model.train()
    return res


def train(args):
    import numpy as np
    import torch
    import torch.nn.functional as F
    from transformers import LlamaForCausalLM

    tok_path = os.path.join(args.tokenizer, "tokenizer.json")
    for item in filter(None, args.task_weights.split(",")):
        name, w = item.split("=")
        if name not in TASK_WEIGHTS:
            sys.exit(f"train: --task-weights: unknown task '{name}'")
        TASK_WEIGHTS[name] = float(w)
    print("train: task weights " + " ".join(f"{t}={w:g}" for t, w in TASK_WEIGHTS.items()) +
          f"; {args.long_frac:g} of the batches at the longest length", flush=True)
    ctx = mp.get_context("fork")
    pool = ctx.Pool(args.workers, initializer=_worker_init, initargs=(tok_path, args.data))
    device = args.device
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    state = {"step": 0, "train_s": 0.0, "tokens": 0, "docs": 0, "runs": 0, "seed": args.seed,
             "model": {k: getattr(args, k) for k in
                       ("layers", "hidden", "ffn", "heads", "kv_heads", "rope_theta")}}
    if args.resume:
        with open(os.path.join(args.ckpt, "state.json")) as f:
            saved = json.load(f)
        for k, v in saved["model"].items():
            setattr(args, k, v)
    cfg = model_config(args, tok_path)
    cfg._attn_implementation = "sdpa"
    model = LlamaForCausalLM(cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                            fused=device == "cuda")
    if args.resume:
        state = load_checkpoint(args.ckpt, model, opt, device)
    state["runs"] += 1
    n_params = sum(p.numel() for p in model.parameters())
    print(f"train: {n_params / 1e6:.2f}M parameters, {cfg.num_hidden_layers} layers, hidden "
          f"{cfg.hidden_size}, heads {cfg.num_attention_heads}/{cfg.num_key_value_heads}, vocab "
          f"{cfg.vocab_size}; run {state['runs']} from step {state['step']} "
          f"({state['train_s'] / 60:.1f} of {args.budget_minutes} min)", flush=True)

    budget_s = args.budget_minutes * 60
    rng = random.Random(args.seed * 1000003 + state["runs"])
    seed_base = tasks.TRAIN_SEED_BASE + args.seed * 2 ** 30
    pending = deque()

    def submit():
        _, max_len = schedule(args, state["train_s"] / budget_s)
        L = batch_length(rng, max_len, args.long_frac)
        n = max(1, args.tokens_per_step // L)
        seeds = [seed_base + state["docs"] + i for i in range(n)]
        state["docs"] += n
        pending.append((L, pool.apply_async(make_batch, ((L, seeds),))))

    t_run = time.time()
    train_s0 = state["train_s"]
    for _ in range(args.workers * 2):
        submit()
    stats = {"ans": 0.0, "ctx": 0.0, "n": 0, "tok": 0}
    per_task = {t: [0, 0] for t in tasks.TASKS}
    t_log = time.time()
    limit = START + args.minutes * 60 - args.reserve_s
    while True:
        state["train_s"] = train_s0 + (time.time() - t_run)
        progress = state["train_s"] / budget_s
        if time.time() > limit or progress >= 1.0:
            break
        lr_frac, _ = schedule(args, progress)
        warm = min(1.0, (state["step"] + 1) / args.warmup)
        for g in opt.param_groups:
            g["lr"] = args.lr * lr_frac * warm
        L, fut = pending.popleft()
        ids, codes, task_ids = fut.get()
        submit()
        x = torch.from_numpy(ids.astype(np.int64)).to(device, non_blocking=True)
        c = torch.from_numpy(codes).to(device, non_blocking=True)
        with torch.autocast("cuda" if device == "cuda" else "cpu", dtype=torch.bfloat16):
            logits = model(input_ids=x[:, :-1]).logits
        ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                             reduction="none").view(c.shape)
        ans, ctxm = (c == 2).float(), (c == 1).float()
        ans_loss = (ce * ans).sum() / ans.sum().clamp(min=1)
        ctx_loss = (ce * ctxm).sum() / ctxm.sum().clamp(min=1)
        loss = ans_loss + args.lm_weight * ctx_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        state["tokens"] += int(ids.size)
        stats["ans"] += ans_loss.item()
        stats["ctx"] += ctx_loss.item()
        stats["n"] += 1
        stats["tok"] += int(ids.size)
        with torch.no_grad():
            # Teacher-forced: are all of a document's answer tokens the argmax?
            wrong = ((logits.argmax(-1) != x[:, 1:]) & (c == 2)).any(-1).cpu().numpy()
        for t, w in zip(task_ids, wrong):
            per_task[tasks.TASKS[t]][0] += int(not w)
            per_task[tasks.TASKS[t]][1] += 1
        if state["step"] % args.log_every == 0:
            dt = time.time() - t_log
            acc = " ".join(f"{t.replace('niah_', '')}={a / max(1, n):.2f}"
                           for t, (a, n) in per_task.items())
            print(f"step {state['step']} L={L} prog={progress:.3f} lr={args.lr * lr_frac * warm:.2e} "
                  f"ans={stats['ans'] / stats['n']:.3f} ctx={stats['ctx'] / stats['n']:.3f} "
                  f"tok/s={stats['tok'] / dt:.0f} | {acc}", flush=True)
            stats = {"ans": 0.0, "ctx": 0.0, "n": 0, "tok": 0}
            per_task = {t: [0, 0] for t in tasks.TASKS}
            t_log = time.time()
    pool.terminate()
    if device == "cuda":
        print(f"train: {torch.cuda.get_device_name()}, torch {torch.__version__}, peak memory "
              f"{torch.cuda.max_memory_allocated() / 2 ** 30:.1f} GiB", flush=True)
    save_checkpoint(args.ckpt, model, opt, state)
    print(f"train: saved step {state['step']} ({state['train_s'] / 60:.2f} min, "
          f"{state['tokens'] / 1e6:.0f}M tokens, {state['docs']} documents) to {args.ckpt}",
          flush=True)
    if args.quick_eval:
        gen = tasks.Generator(tok_path, args.data)
        res = quick_eval(model, gen, device, [int(x) for x in args.quick_eval_lengths.split(",")],
                         args.quick_eval, args.quick_eval_s)
        print("quick eval (global attention, all expected strings):", json.dumps(res), flush=True)
        with open(os.path.join(args.ckpt, "quick_eval.json"), "w") as f:
            json.dump({"step": state["step"], "results": res}, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", default=os.path.join(HERE, "ckpt"), help="checkpoint folder")
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "model"),
                    help="folder with tokenizer.json (make_tokenizer.py)")
    ap.add_argument("--data", default=tasks.DATA, help="folder from prepare_data.py")
    ap.add_argument("--export", metavar="DIR", help="write the checkpoint as an HF model and exit")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--minutes", type=float, default=8.0, help="this run's wall-clock limit")
    ap.add_argument("--reserve-s", type=float, default=25.0, help="time kept for saving")
    ap.add_argument("--budget-minutes", type=float, default=15.0, help="training time, all runs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--rope-theta", type=float, default=500000.0)
    ap.add_argument("--max-len", type=int, default=8192)
    ap.add_argument("--tokens-per-step", type=int, default=131072)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--lm-weight", type=float, default=0.25)
    ap.add_argument("--task-weights", default="",
                    help="TASK=W,... in place of the default documents per 100 of a task")
    ap.add_argument("--long-frac", type=float, default=0.7,
                    help="fraction of batches at the longest length the curriculum allows now")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--quick-eval", type=int, default=0, help="held-out samples per task at the end")
    ap.add_argument("--quick-eval-lengths", default="8192")
    ap.add_argument("--quick-eval-s", type=float, default=30.0)
    args = ap.parse_args()
    if args.export:
        export(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
