#!/usr/bin/env python3
"""Speedup and efficiency against ranks, from bench/scaling/run.sh's JSON lines.

  python3 bench/scaling/plot.py DIR

Reads DIR/strong.jsonl (fixed context) and DIR/weak.jsonl (context proportional to ranks), the
lines of `starinfer bench --json`. Star runs are grouped by context and anchor ("a = b": the
anchor is the block; "a = 4096": a fixed anchor), and timed by the time to first token:
  strong: speedup(R) = TTFT(1 rank) / TTFT(R ranks), efficiency = speedup / R, and the speedup
          over global attention on one GPU at the same context where that ran;
  weak:   efficiency(R) = TTFT(1 rank) / TTFT(R ranks) (the work per rank is the same).
Writes DIR/scaling.png and DIR/scaling.md (the same table as on stdout).
"""

import json
import os
import sys


def load(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        try:
            return [json.loads(ln) for ln in f if ln.strip()]
        except ValueError as e:
            sys.exit(f"plot: {path}: not JSON lines ({e})")


def anchor_label(r):
    return "a = b" if r.get("anchor") == r.get("block") else f"a = {r.get('anchor')}"


def ttft(r):
    return None if "error" in r else r["ttft_s"]["mean"]


def series(records):
    """{(context, anchor label): {ranks: TTFT}} of the Star runs (the last line per point)."""
    out = {}
    for r in records:
        if r.get("attn") == "star" and ttft(r) is not None:
            out.setdefault((r["context"], anchor_label(r)), {})[r["ranks"]] = ttft(r)
    return out


def strong_rows(records):
    glob = {r["context"]: ttft(r) for r in records
            if r.get("attn") == "global" and r.get("ranks", 1) == 1 and ttft(r) is not None}
    rows = []
    for (n, label), pts in sorted(series(records).items()):
        for ranks, t in sorted(pts.items()):
            base = pts.get(1)
            s = base / t if base else None
            rows.append({"context": n, "anchor": label, "ranks": ranks, "ttft_s": t, "speedup": s,
                         "efficiency": s / ranks if s else None,
                         "vs_global": glob[n] / t if n in glob else None})
    return rows


def weak_rows(records):
    by_label = {}
    for (n, label), pts in series(records).items():
        for ranks, t in pts.items():
            by_label.setdefault(label, {})[ranks] = (n, t)
    rows = []
    for label, pts in sorted(by_label.items()):
        base = pts.get(1)
        for ranks, (n, t) in sorted(pts.items()):
            rows.append({"context": n, "anchor": label, "ranks": ranks, "ttft_s": t,
                         "efficiency": base[1] / t if base else None})
    return rows


def num(v, spec):
    return "" if v is None else format(v, spec)


def table(strong, weak, errors):
    lines = ["## Strong scaling (fixed context)", "",
             "| context | anchor | ranks | TTFT s | speedup | efficiency | speedup over global (1 GPU) |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in strong:
        lines.append(f"| {r['context']} | {r['anchor']} | {r['ranks']} | {r['ttft_s']:.3f} | "
                     f"{num(r['speedup'], '.2f')} | {num(r['efficiency'], '.2f')} | "
                     f"{num(r['vs_global'], '.2f')} |")
    lines += ["", "## Weak scaling (context proportional to ranks)", "",
              "| context | anchor | ranks | TTFT s | efficiency |", "| ---: | --- | ---: | ---: | ---: |"]
    for r in weak:
        lines.append(f"| {r['context']} | {r['anchor']} | {r['ranks']} | {r['ttft_s']:.3f} | "
                     f"{num(r['efficiency'], '.2f')} |")
    if errors:
        lines += ["", "Failed configurations:", ""]
        lines += [f"- {r.get('attn')} {r.get('ranks')} ranks, context {r.get('context')}, block "
                  f"{r.get('block')}, anchor {r.get('anchor')}: {r['error']}" for r in errors]
    return "\n".join(lines) + "\n"


def draw(strong, weak, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    groups = sorted({(r["context"], r["anchor"]) for r in strong})
    for n, label in groups:
        pts = [r for r in strong if (r["context"], r["anchor"]) == (n, label) and r["speedup"]]
        name = f"{n // 1024}K, {label}"
        axes[0].plot([r["ranks"] for r in pts], [r["speedup"] for r in pts], marker="o", label=name)
        axes[1].plot([r["ranks"] for r in pts], [r["efficiency"] for r in pts], marker="o", label=name)
    for label in sorted({r["anchor"] for r in weak}):
        pts = [r for r in weak if r["anchor"] == label and r["efficiency"]]
        axes[2].plot([r["ranks"] for r in pts], [r["efficiency"] for r in pts], marker="o", label=label)
    ranks = sorted({r["ranks"] for r in strong + weak}) or [1]
    axes[0].plot(ranks, ranks, color="grey", lw=0.8, ls="--", label="ideal")
    for ax, title, ylabel in ((axes[0], "strong scaling", "speedup over 1 rank"),
                              (axes[1], "strong scaling", "efficiency (speedup / ranks)"),
                              (axes[2], "weak scaling (128K tokens per rank)", "efficiency")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ranks, [str(r) for r in ranks])
        ax.set_xlabel("ranks (GPUs)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("Star Attention, time to first token, Llama-3.1-8B shape")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.exit(__doc__)
    d = argv[0]
    strong_recs, weak_recs = load(os.path.join(d, "strong.jsonl")), load(os.path.join(d, "weak.jsonl"))
    if not strong_recs and not weak_recs:
        sys.exit(f"plot: no strong.jsonl or weak.jsonl in {d}; run bench/scaling/run.sh --out {d} first")
    strong, weak = strong_rows(strong_recs), weak_rows(weak_recs)
    text = table(strong, weak, [r for r in strong_recs + weak_recs if "error" in r])
    with open(os.path.join(d, "scaling.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    try:
        draw(strong, weak, os.path.join(d, "scaling.png"))
    except ImportError:
        sys.exit("plot: no matplotlib: install python3-matplotlib for the PNG (the table is written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
