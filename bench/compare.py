#!/usr/bin/env python3
"""starinfer bench against the Transformers baseline: a ratio table and the speed targets.

  python3 bench/compare.py STARINFER.jsonl HF.jsonl [--md FILE]

Joins `starinfer bench --json` lines with `bench/hf_baseline.py --json` lines by shape and context
(the last line wins where a configuration was measured twice) and prints, in markdown:
  - per configuration: time to first token against Transformers' (speedup = HF / starinfer),
    decode tokens/s (ratio = starinfer / HF), and starinfer's roofline fractions;
  - the targets, each pass, FAIL or "no data":
      TTFT speedup over Transformers, global attention on one GPU: >= 1.2x at 16K, >= 1.0x at 32K-128K
      prefill at >= 80% of the matmul roofline at 128K; decode at >= 80% of the bandwidth bound at 32K
      Star on 2 ranks against global on 1, TTFT at 128K: >= 3x with anchor = block, >= 4x with anchor 4K
      the phase-2 merge (all layers) <= 10% of the time of one decoded token
"""

import argparse
import json
import sys

# Layers per shape, for the merge's share of a decoded token (a record's "layers" field wins).
LAYERS = {"llama-3.1-8b": 32, "llama-3.2-1b": 16}
K = 1024


def load(path):
    """JSON lines of one file; a malformed line is an error naming the file and line."""
    recs = []
    try:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    recs.append(json.loads(line))
                except ValueError as e:
                    sys.exit(f"compare: {path}:{i}: not a JSON line ({e}); fix or remove that line")
    except OSError as e:
        sys.exit(f"compare: cannot read {path}: {e.strerror}; give the --json file of the run")
    return recs


def model_records(recs):
    """The per-configuration records (not the "rates"/"sdpa" ones), last one per configuration."""
    out = {}
    for r in recs:
        if r.get("kind") not in (None, "model") or "context" not in r:
            continue
        key = (r.get("shape") or r.get("model"), r["context"], r.get("attn", "global"),
               r.get("merge_transport", "mpi"),
               r.get("ranks", 1), r.get("block"), r.get("anchor"))
        out[key] = r
    return list(out.values())


def mean(r, field):
    v = r.get(field)
    return v.get("mean") if isinstance(v, dict) and "error" not in r else None


def roof(r, field):
    v = (r.get("roofline") or {}).get(field)
    return v if "error" not in r else None


def shape_of(r):
    return r.get("shape") or r.get("model")


def is_global_one(r):
    return r.get("attn", "global") == "global" and r.get("ranks", 1) == 1


def join(ours, hf):
    """One row per starinfer configuration, with the Transformers line of its shape and context."""
    by_key = {(shape_of(h), h["context"]): h for h in hf}
    rows = []
    for r in sorted(ours, key=lambda r: (shape_of(r), r["context"], r.get("attn", ""),
                                         r.get("ranks", 1), -(r.get("anchor") or 0))):
        h = by_key.get((shape_of(r), r["context"]))
        t_ours, t_hf = mean(r, "ttft_s"), mean(h, "ttft_s") if h else None
        d_ours, d_hf = mean(r, "decode_tokens_per_s"), mean(h, "decode_tokens_per_s") if h else None
        rows.append({"ours": r, "hf": h,
                     "speedup": t_hf / t_ours if t_ours and t_hf else None,
                     "decode_ratio": d_ours / d_hf if d_ours and d_hf else None})
    return rows


def check(name, context, value, needed, ok_fn, fmt):
    return {"target": name, "context": context, "value": value, "needed": needed,
            "ok": None if value is None else bool(ok_fn(value)),
            "shown": "" if value is None else fmt(value)}


def targets(ours, hf):
    """Every target of the issue, evaluated where the data exists (ok None: no data)."""
    rows = join(ours, hf)
    out = []
    glob = {(shape_of(x["ours"]), x["ours"]["context"]): x for x in rows if is_global_one(x["ours"])}
    shapes = sorted({s for s, _ in glob} | {shape_of(r) for r in ours}) or ["llama-3.1-8b"]
    x_fmt, pct = (lambda v: f"{v:.2f}x"), (lambda v: f"{100 * v:.0f}%")
    for s in shapes:
        for n, need in ((16 * K, 1.2), (32 * K, 1.0), (64 * K, 1.0), (128 * K, 1.0)):
            x = glob.get((s, n))
            out.append(check(f"{s}: TTFT speedup over Transformers (global, 1 GPU)", n,
                             x["speedup"] if x else None, f">= {need}x", lambda v, t=need: v >= t, x_fmt))
        x = glob.get((s, 128 * K))
        out.append(check(f"{s}: prefill fraction of the matmul roofline", 128 * K,
                         roof(x["ours"], "prefill_fraction") if x else None, ">= 80%",
                         lambda v: v >= 0.8, pct))
        sustained = roof(x["ours"], "prefill_fraction_sustained") if x else None
        if sustained is not None:  # bench --sustained S: the rate a power-capped GPU keeps up
            out.append(check(f"{s}: the same against the matrix rate sustained", 128 * K,
                             sustained, ">= 80%", lambda v: v >= 0.8, pct))
        x = glob.get((s, 32 * K))
        out.append(check(f"{s}: decode fraction of the bandwidth bound", 32 * K,
                         roof(x["ours"], "decode_fraction") if x else None, ">= 80%",
                         lambda v: v >= 0.8, pct))
        base = glob.get((s, 128 * K))
        for label, need, pick in (("anchor = block", 3.0, lambda r: r.get("anchor") == r.get("block")),
                                  ("anchor 4K", 4.0, lambda r: r.get("anchor") == 4 * K)):
            star = [r for r in ours if shape_of(r) == s and r.get("attn") == "star"
                    and r.get("ranks") == 2 and r["context"] == 128 * K and pick(r)]
            t_star = mean(star[-1], "ttft_s") if star else None
            t_glob = mean(base["ours"], "ttft_s") if base else None
            out.append(check(f"{s}: Star on 2 ranks ({label}) against global on 1, TTFT ratio", 128 * K,
                             t_glob / t_star if t_star and t_glob else None, f">= {need:.0f}x",
                             lambda v, t=need: v >= t, x_fmt))
        for r in ours:
            if shape_of(r) != s or r.get("attn") != "star":
                continue
            merge, tps = mean(r, "merge_ms_per_layer"), mean(r, "decode_tokens_per_s")
            layers = r.get("layers") or LAYERS.get(s)
            share = merge * layers / (1000.0 / tps) if merge is not None and tps and layers else None
            out.append(check(f"{s}: merge of all layers as a share of a decoded token "
                             f"({r.get('ranks')} ranks, block {r.get('block')}, anchor {r.get('anchor')})",
                             r["context"], share, "<= 10%", lambda v: v <= 0.1, pct))
    return out


def num(v, spec):
    return "" if v is None else format(v, spec)


def markdown(ours, hf, rates):
    lines = ["## starinfer against Transformers + SDPA (same GPU, same shape)", "",
             "Speedup = Transformers' time to first token / starinfer's; decode ratio = starinfer's "
             "tokens/s / Transformers'.", "",
             "| shape | context | attn | ranks | block | anchor | TTFT s | HF TTFT s | speedup | "
             "decode tok/s | HF decode tok/s | decode ratio | prefill roofline | decode roofline |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for x in join(ours, hf):
        r, h = x["ours"], x["hf"]
        cells = [shape_of(r), str(r["context"]), r.get("attn", "global"), str(r.get("ranks", 1)),
                 str(r.get("block") or ""), str(r.get("anchor") or "")]
        if r.get("error"):
            cells += [f"error: {r['error'][:60]}"] + [""] * 7
        else:
            pf, df = roof(r, "prefill_fraction"), roof(r, "decode_fraction")
            ps = roof(r, "prefill_fraction_sustained")
            cells += [num(mean(r, "ttft_s"), ".3f"),
                      "error" if h and h.get("error") else num(mean(h, "ttft_s") if h else None, ".3f"),
                      num(x["speedup"], ".2f"), num(mean(r, "decode_tokens_per_s"), ".1f"),
                      num(mean(h, "decode_tokens_per_s") if h else None, ".1f"),
                      num(x["decode_ratio"], ".2f"),
                      ("" if pf is None else f"{100 * pf:.0f}%")
                      + ("" if ps is None else f" ({100 * ps:.0f}% sustained)"),
                      "" if df is None else f"{100 * df:.0f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Targets", "", "| target | context | value | needed | result |",
              "| --- | ---: | ---: | ---: | --- |"]
    for t in targets(ours, hf):
        res = "no data" if t["ok"] is None else ("pass" if t["ok"] else "FAIL")
        lines.append(f"| {t['target']} | {t['context']} | {t['shown']} | {t['needed']} | {res} |")
    for r in rates:
        lines += ["", f"Same GPU ({r.get('gpu')}), measured by Transformers' run: bf16 GEMM "
                      f"{r['matmul_tflops']:.0f} TFLOP/s, device copy {r['mem_gbps']:.0f} GB/s "
                      f"(bytes read + written)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("starinfer", help="starinfer bench --json lines")
    ap.add_argument("hf", help="bench/hf_baseline.py --json lines")
    ap.add_argument("--md", metavar="FILE", help="also write the markdown here")
    args = ap.parse_args(argv)
    ours = [r for r in model_records(load(args.starinfer)) if r.get("tool", "starinfer") == "starinfer"]
    hf_all = load(args.hf)
    hf = [r for r in model_records(hf_all) if r.get("tool") == "transformers"]
    if not ours:
        sys.exit(f"compare: no starinfer bench lines in {args.starinfer}")
    if not hf:
        sys.exit(f"compare: no Transformers lines in {args.hf}; run bench/hf_baseline.py --json")
    text = markdown(ours, hf, [r for r in hf_all if r.get("kind") == "rates"])
    sys.stdout.write(text)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
