#!/usr/bin/env python3
"""The Hugging Face Transformers baseline that `starinfer bench` is compared with.

Builds a LlamaForCausalLM of a named shape with random bf16 weights, created directly on the
device, with attn_implementation="sdpa", and times on the same device:

  prefill    one forward over CONTEXT + QUERY tokens with use_cache (logits of the last token
             only where the version allows it), then the first token (greedy): time to first token
  decode     --decode-tokens greedy steps after that prefill (Transformers' dynamic KV cache)
  peak       torch.cuda.max_memory_allocated over each length's runs
  rates      (--rates) bf16 GEMM TFLOP/s (N x N x N torch.matmul) and device copy GB/s
  sdpa       (--sdpa-kernel) SDPA alone, causal, 32 heads of 128, batch 1: PyTorch's default
             backend (what Transformers runs: cuDNN's attention on an H100 with PyTorch 2.11),
             and the flash and cuDNN backends forced

Every length is --warmup untimed runs then --repeat timed ones (mean/std/min/max). An error at
one length (out of memory, say) is recorded in that length's JSON line and the run goes on.
JSON lines go to --json (fields named as starinfer bench's where they mean the same), a markdown
table to stdout, progress to stderr.

  python3 bench/hf_baseline.py --shape llama-3.1-8b --lengths 16384,32768 --rates --sdpa-kernel \\
      --json hf.jsonl
"""

import argparse
import gc
import inspect
import json
import os
import statistics
import subprocess
import sys
import time

# Shapes as in `starinfer bench --shape` (the public configs of these models; tiny is a test model).
LLAMA3_ROPE = {"rope_type": "llama3", "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
SHAPES = {
    "llama-3.1-8b": dict(num_hidden_layers=32, hidden_size=4096, intermediate_size=14336,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                         rope_theta=500000.0, rope_scaling=dict(LLAMA3_ROPE, factor=8.0),
                         tie_word_embeddings=False),
    "llama-3.2-1b": dict(num_hidden_layers=16, hidden_size=2048, intermediate_size=8192,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                         rope_theta=500000.0, rope_scaling=dict(LLAMA3_ROPE, factor=32.0),
                         tie_word_embeddings=True),
    "tiny": dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, rope_theta=500000.0,
                 rope_scaling=dict(LLAMA3_ROPE, factor=8.0), tie_word_embeddings=True),
}
SDPA_FLOPS_NOTE = "4*n^2/2*d*h: QK^T and PV, causal half counted"


def log(msg):
    print(f"hf_baseline: {msg}", file=sys.stderr, flush=True)


def stats(xs):
    """mean/std/min/max of the timed runs (std: sample standard deviation, 0 for one run)."""
    return {"mean": statistics.fmean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs)}


def command_line():
    """How this run was started, the script named from the repository root (as in the docs)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.relpath(os.path.abspath(sys.argv[0]), repo)
    return " ".join([script if not script.startswith("..") else sys.argv[0], *sys.argv[1:]])


def git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        return subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class Device:
    """The torch device, its synchronisation and its memory counters (none on a CPU)."""

    def __init__(self, torch, name):
        self.torch, self.name = torch, name
        self.cuda = name.startswith("cuda")
        if self.cuda and not torch.cuda.is_available():
            sys.exit("hf_baseline: --device cuda but torch sees no GPU; use --device cpu (tiny shapes)")
        self.gpu = torch.cuda.get_device_name(name) if self.cuda else None

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize(self.name)

    def reset_peak(self):
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats(self.name)

    def peak_gib(self):
        return self.torch.cuda.max_memory_allocated(self.name) / 2**30 if self.cuda else None

    def free(self):
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()

    def timed(self, fn):
        self.sync()
        t0 = time.perf_counter()
        out = fn()
        self.sync()
        return time.perf_counter() - t0, out


def build_model(torch, shape, dev, max_positions, seed):
    """Random bf16 weights initialised on the device itself (no fp32 copy on the host)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(**SHAPES[shape], max_position_embeddings=max(131072, max_positions),
                      rms_norm_eps=1e-5, attn_implementation="sdpa")
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(dev.name):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(previous)
    return model.to(torch.bfloat16).eval()


def last_logits_kwargs(model):
    """Ask for the last token's logits only, where this Transformers version can."""
    params = inspect.signature(model.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return {name: 1}, name
    return {}, None


def prefill(model, ids, keep):
    """One forward over ids with use_cache; the greedy first token and the KV cache."""
    out = model(input_ids=ids, use_cache=True, **keep)
    return out.logits[:, -1:].argmax(-1), out.past_key_values


def decode(model, tok, cache, steps, keep):
    """steps greedy tokens after tok; returns them (a list of 1x1 tensors) and the cache."""
    tokens = []
    for _ in range(steps):
        out = model(input_ids=tok, past_key_values=cache, use_cache=True, **keep)
        cache = out.past_key_values
        tok = out.logits[:, -1:].argmax(-1)
        tokens.append(tok)
    return tokens, cache


def measure_length(torch, model, dev, n, args, keep):
    """One context length: warmup, then timed prefill + decode runs."""
    gen = torch.Generator().manual_seed(n)
    ids = torch.randint(0, model.config.vocab_size, (1, n + args.query_tokens), generator=gen)
    ids = ids.to(dev.name)
    ttft, tps = [], []
    dev.reset_peak()
    for run in range(args.warmup + args.repeat):
        t_prefill, (tok, cache) = dev.timed(lambda: prefill(model, ids, keep))
        t_decode, (_, cache) = dev.timed(lambda: decode(model, tok, cache, args.decode_tokens, keep))
        del tok, cache  # before the next prefill, or two KV caches would count in the peak
        rate = args.decode_tokens / t_decode if args.decode_tokens else None
        if run >= args.warmup:
            ttft.append(t_prefill)
            if rate:
                tps.append(rate)
        log(f"{n} tokens, run {run + 1}/{args.warmup + args.repeat}"
            f"{' (warmup)' if run < args.warmup else ''}: prefill {t_prefill:.3f} s"
            + (f", decode {rate:.1f} tok/s" if rate else ""))
    return {"ttft_s": stats(ttft), "decode_tokens_per_s": stats(tps) if tps else None,
            "peak_gib": dev.peak_gib()}


def is_oom(torch, e):
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(e, oom) or "out of memory" in str(e).lower()


def run_lengths(torch, dev, lengths, base, measure):
    """measure(n) for every length; an exception becomes that length's "error" and we go on."""
    records = []
    for n in lengths:
        rec = dict(base, context=n)
        try:
            rec.update(measure(n))
        except (RuntimeError, MemoryError) as e:
            kind = "out of memory" if is_oom(torch, e) else type(e).__name__
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            rec["error"] = f"{kind} at context {n}: {msg}"[:400]
            log(f"{n} tokens: {rec['error']}; going on with the next length")
        dev.free()
        records.append(rec)
    return records


def measure_rates(torch, dev, gemm_n, copy_mib, iters):
    """bf16 GEMM TFLOP/s (2*N^3 flops per matmul) and copy GB/s (bytes read + bytes written)."""
    a = torch.randn(gemm_n, gemm_n, device=dev.name, dtype=torch.bfloat16)
    b = torch.randn(gemm_n, gemm_n, device=dev.name, dtype=torch.bfloat16)
    torch.matmul(a, b)
    t, _ = dev.timed(lambda: [torch.matmul(a, b) for _ in range(iters)])
    tflops = 2 * gemm_n**3 * iters / t / 1e12
    del a, b
    n = copy_mib * 2**20 // 2
    src = torch.empty(n, device=dev.name, dtype=torch.bfloat16).fill_(1)
    dst = torch.empty_like(src)
    dst.copy_(src)
    t, _ = dev.timed(lambda: [dst.copy_(src) for _ in range(iters)])
    gbps = 2 * src.numel() * 2 * iters / t / 1e9
    del src, dst
    dev.free()
    return {"matmul_tflops": tflops, "gemm_size": gemm_n, "mem_gbps": gbps,
            "copy_bytes": copy_mib * 2**20, "mem_gbps_counts": "bytes read + bytes written"}


SDPA_BACKENDS = ("default", "flash", "cudnn")


def measure_sdpa(torch, dev, n, heads, head_dim, repeat, warmup, backend="default"):
    """SDPA alone, causal, with BACKEND: "default" is PyTorch's own choice (what Transformers
    runs), "flash" and "cudnn" force one (GPU only; one that cannot run raises RuntimeError)."""
    import torch.nn.functional as F
    q, k, v = (torch.randn(1, heads, n, head_dim, device=dev.name, dtype=torch.bfloat16)
               for _ in range(3))
    ctx = None
    if backend != "default":
        from torch.nn.attention import SDPBackend, sdpa_kernel
        ctx = sdpa_kernel({"flash": SDPBackend.FLASH_ATTENTION,
                           "cudnn": SDPBackend.CUDNN_ATTENTION}[backend])
    times = []
    with ctx if ctx is not None else _null():
        for i in range(warmup + repeat):
            t, _ = dev.timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
            if i >= warmup:
                times.append(t)
    flops = 4 * n * n / 2 * head_dim * heads
    del q, k, v
    dev.free()
    st = stats(times)
    return {"context": n, "heads": heads, "head_dim": head_dim, "batch": 1, "causal": True,
            "backend": backend, "time_s": st, "flops": flops, "tflops": flops / st["mean"] / 1e12,
            "flops_counted": SDPA_FLOPS_NOTE}


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def fmt(st, spec=".3f"):
    return "" if not st else f"{st['mean']:{spec}} ± {st['std']:{spec}}"


def markdown(records, rates, sdpa):
    lines = ["| shape | context | query | TTFT s | prefill tok/s | decode tok/s | peak GiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['shape']} | {r['context']} | {r['query_tokens']} | error: "
                         f"{r['error'][:60]} | | | |")
            continue
        pp = (r["context"] + r["query_tokens"]) / r["ttft_s"]["mean"]
        peak = "" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"
        lines.append(f"| {r['shape']} | {r['context']} | {r['query_tokens']} | {fmt(r['ttft_s'])} | "
                     f"{pp:.0f} | {fmt(r['decode_tokens_per_s'], '.1f')} | {peak} |")
    if rates:
        lines += ["", f"bf16 GEMM {rates['gemm_size']}^3: {rates['matmul_tflops']:.1f} TFLOP/s; "
                      f"device copy: {rates['mem_gbps']:.0f} GB/s (bytes read + written)"]
    if sdpa:
        lines += ["", f"SDPA causal attention, batch 1 (FLOPs = {SDPA_FLOPS_NOTE}):", "",
                  "| context | heads | head dim | backend | time s | TFLOP/s |",
                  "| ---: | ---: | ---: | --- | ---: | ---: |"]
        for s in sdpa:
            if "error" in s:
                lines.append(f"| {s['context']} | {s['heads']} | {s['head_dim']} | | error: "
                             f"{s['error'][:60]} | |")
            else:
                lines.append(f"| {s['context']} | {s['heads']} | {s['head_dim']} | {s['backend']} | "
                             f"{s['time_s']['mean']:.4f} | {s['tflops']:.1f} |")
    return "\n".join(lines)


def parse_lengths(text, flag):
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        sys.exit(f"hf_baseline: {flag} '{text}': give comma-separated token counts, e.g. 16384,32768")
    if not out or min(out) < 1:
        sys.exit(f"hf_baseline: {flag} '{text}': every length must be at least 1")
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--shape", default="llama-3.1-8b", choices=sorted(SHAPES))
    ap.add_argument("--lengths", default="16384,32768", help="context tokens, comma-separated")
    ap.add_argument("--query-tokens", type=int, default=32)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rates", action="store_true", help="also the GEMM TFLOP/s and copy GB/s")
    ap.add_argument("--gemm-size", type=int, default=8192)
    ap.add_argument("--copy-mib", type=int, default=1024)
    ap.add_argument("--sdpa-kernel", action="store_true",
                    help="also SDPA alone: the default, flash and cuDNN backends")
    ap.add_argument("--sdpa-lengths", default="16384,65536")
    ap.add_argument("--json", metavar="FILE", help="append JSON lines here")
    args = ap.parse_args(argv)
    args.lengths = parse_lengths(args.lengths, "--lengths")
    args.sdpa_lengths = parse_lengths(args.sdpa_lengths, "--sdpa-lengths")
    for flag in ("query_tokens", "repeat", "gemm_size", "copy_mib"):
        if getattr(args, flag) < 1:
            sys.exit(f"hf_baseline: --{flag.replace('_', '-')} must be at least 1")
    if args.decode_tokens < 0 or args.warmup < 0:
        sys.exit("hf_baseline: --decode-tokens and --warmup must be 0 or more")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        import torch
        import transformers
    except ImportError as e:
        sys.exit(f"hf_baseline: {e}; install PyTorch and Transformers (pip install torch transformers)")
    dev = Device(torch, args.device)
    base = {"tool": "transformers", "shape": args.shape, "model": args.shape,
            "device": "cuda" if dev.cuda else "cpu", "gpu": dev.gpu, "torch": torch.__version__,
            "transformers": transformers.__version__, "attn": "global",
            "attn_implementation": "sdpa", "ranks": 1, "active_ranks": 1,
            "query_tokens": args.query_tokens, "decode_tokens": args.decode_tokens,
            "repeat": args.repeat, "warmup": args.warmup, "cache": "dynamic",
            "git_commit": git_commit(), "command": command_line()}
    extra = []
    if args.rates:
        log(f"bf16 GEMM {args.gemm_size}^3 and a {args.copy_mib} MiB device copy")
        rates = measure_rates(torch, dev, args.gemm_size, args.copy_mib, iters=max(args.repeat, 10))
        extra.append(dict({k: base[k] for k in ("tool", "device", "gpu", "torch", "git_commit")},
                          kind="rates", **rates))
    sdpa = []
    if args.sdpa_kernel:
        sdpa_base = {k: base[k] for k in ("tool", "device", "gpu", "torch", "git_commit")}
        for backend in SDPA_BACKENDS if dev.cuda else ("default",):
            def one(n, backend=backend):
                log(f"SDPA causal attention alone at {n} tokens, backend {backend}")
                return measure_sdpa(torch, dev, n, 32, 128, args.repeat, max(args.warmup, 1),
                                    backend)
            sdpa += run_lengths(torch, dev, args.sdpa_lengths,
                                dict(sdpa_base, kind="sdpa", heads=32, head_dim=128,
                                     backend=backend), one)
        extra += sdpa
    log(f"building {args.shape} with random bf16 weights on {dev.name}")
    t0 = time.perf_counter()
    model = build_model(torch, args.shape, dev, max(args.lengths) + args.query_tokens
                        + args.decode_tokens + 1, args.seed)
    keep, keep_name = last_logits_kwargs(model)
    base["logits"] = f"last token only ({keep_name})" if keep_name else "every token"
    log(f"built in {time.perf_counter() - t0:.1f} s; logits: {base['logits']}")
    with torch.inference_mode():
        records = run_lengths(torch, dev, args.lengths, base,
                              lambda n: measure_length(torch, model, dev, n, args, keep))
    if args.json:
        with open(args.json, "a") as f:
            for r in records + extra:
                f.write(json.dumps(r) + "\n")
    print(f"Transformers {transformers.__version__} + SDPA, torch {torch.__version__}, "
          f"{dev.gpu or 'CPU'}, {args.shape}, random bf16 weights, dynamic KV cache, "
          f"{args.warmup} warmup + {args.repeat} runs\n")
    print(markdown(records, extra[0] if args.rates else None, sdpa))
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
