#!/usr/bin/env python3
"""Variable tracking under Star Attention: how many links of the chain phase 1 cannot see.

The `vt` task hides a chain of 5 statements (`VAR A = 12345.`, `VAR B = VAR A.`, ... 4 hops) at
random depths in filler. Star Attention collapses on it (bench/results/accuracy/: 70% to 10% at
4096 tokens, 90% to 20% at 8192), and the hypothesis is that this small model resolves the chain
while it encodes the context, which phase 1 cannot do across blocks. This script measures, for
every answered `vt` sample, how many of the chain's links phase 1 hides, and joins that with
the sample's score under global attention and under each Star setting.

Phase 1 as runtime/star_plan.c lays it out: the context is BOS + context text, tokenized as
`starinfer eval --chat-template none` does (the query is encoded apart, in phase 2), positions
0 .. n_ctx-1 with the BOS at 0; block j holds positions [j*b, (j+1)*b) (the last one possibly
short); a token of block j > 0 attends to the anchor, positions [0, a), and to its own block up
to itself; a token of block 0 attends to everything before it (the anchor is block 0's start).
A link (statement i -> statement i+1) is visible in phase 1 when the last token of statement
i+1 (where it names statement i's variable) sees every token of statement i: statement i+1 is
in block 0, or every token of statement i is in the anchor or in statement i+1's block (for
statements that do not straddle a block boundary: same block, or statement i wholly inside the
anchor). Otherwise it is hidden.
Block and anchor sizes come from bench/accuracy/run (block_anchor) for each setting and length.

Writes, per length and Star setting, the samples grouped by hidden links (0-4): how many, how
many global answered correctly (score 1.0), how many Star did; and one line per sample and
setting in the JSON (statement spans, each statement's block, hidden links, both scores).

  python3 bench/accuracy/vt_blocks.py
  python3 bench/accuracy/vt_blocks.py --samples bench/results/accuracy/samples.jsonl \
      --model bench/accuracy/model --out-md vt_blocks.md --out-json vt_blocks.json
"""

import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(REPO, "bench", "results", "accuracy")
sys.path.insert(0, HERE)
import tasks  # noqa: E402

HOPS = 4


def load_run():
    """bench/accuracy/run as a module (its file has no .py suffix), for its settings."""
    path = os.path.join(HERE, "run")
    loader = importlib.machinery.SourceFileLoader("accuracy_run", path)
    spec = importlib.util.spec_from_loader("accuracy_run", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def rel(path):
    p = os.path.relpath(os.path.abspath(path), REPO)
    return path if p.startswith("..") else p


def statements(sample):
    """The chain's statements, in chain order, as tasks.py writes them."""
    value = re.search(r"assigned the value (\d+) in the text", sample["query"]).group(1)
    chain = sample["answers"]
    return [f"VAR {chain[0]} = {value}."] + [f"VAR {chain[i]} = VAR {chain[i - 1]}."
                                             for i in range(1, len(chain))]


def statement_spans(tok, context, stmts):
    """Token positions (first, last) of each statement in BOS + CONTEXT, the BOS at 0, and the
    number of context tokens. Checks that each span decodes back to its statement."""
    enc = tok.encode(context)  # add_special_tokens: the BOS, as starinfer eval's context
    assert enc.ids[0] == tok.token_to_id("<|begin_of_text|>"), "no BOS at position 0"
    spans = []
    for s in stmts:
        start = context.find(s)
        assert start >= 0 and context.find(s, start + 1) < 0, f"'{s}' not found once in the context"
        end = start + len(s)
        pos = [i for i, (a, b) in enumerate(enc.offsets) if b > a and a < end and b > start]
        first, last = pos[0], pos[-1]
        assert pos == list(range(first, last + 1))
        text = tok.decode(enc.ids[first:last + 1])
        assert text.strip() == s, f"tokens {first}..{last} decode to '{text}', not '{s}'"
        spans.append((first, last))
    assert all(x[1] < y[0] for x, y in zip(spans, spans[1:])), "statements out of chain order"
    return spans, len(enc.ids)


def link_visible(src, dst, block, anchor):
    """Whether phase 1 lets the last token of statement DST see every token of SRC (before it)."""
    j = dst[1] // block
    if j == 0:
        return True  # block 0 is encoded causally on its own: everything before is visible
    return all(q < anchor or q >= j * block for q in range(src[0], src[1] + 1))


def hidden_links(spans, block, anchor):
    return sum(not link_visible(spans[i], spans[i + 1], block, anchor)
               for i in range(len(spans) - 1))


def read_samples(path):
    """{(length, setting, index): row} of the vt rows of a samples.jsonl."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for ln in f:
            r = json.loads(ln)
            if r["task"] == "vt":
                rows[(r["length"], r["setting"], r["index"])] = r
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--samples", default=os.path.join(RESULTS, "samples.jsonl"),
                    help="samples.jsonl of bench/accuracy/run")
    ap.add_argument("--model", default=os.path.join(HERE, "model"), help="its tokenizer.json")
    ap.add_argument("--out-md", default=os.path.join(RESULTS, "vt_blocks.md"))
    ap.add_argument("--out-json", default=os.path.join(RESULTS, "vt_blocks.json"))
    args = ap.parse_args()
    run = load_run()
    rows = read_samples(args.samples)
    lengths = sorted({L for L, _, _ in rows})
    settings = [s for s in run.settings_for("all") if s != "global"]
    gen = tasks.Generator(args.model)

    chains, lines = [], []
    for L in lengths:
        for index in sorted({i for (l, s, i) in rows if l == L and s == "global"}):
            g = rows[(L, "global", index)]
            assert g["seed"] == tasks.eval_seed("vt", L, index), f"{L} #{index}: not its eval seed"
            sample = gen.sample("vt", L, g["seed"])
            if "expected" in g:
                assert g["expected"] == sample["answers"], f"{L} #{index}: another chain"
            spans, n_ctx = statement_spans(gen.tok, sample["context"], statements(sample))
            chains.append({"length": L, "index": index, "seed": g["seed"], "n_ctx": n_ctx,
                           "spans": spans})
            for s in settings:
                if (L, s, index) not in rows:
                    continue
                b, a = run.block_anchor(s, L)
                lines.append({"length": L, "index": index, "seed": g["seed"], "setting": s,
                              "label": run.label(s), "block": b, "anchor": a,
                              "statement_blocks": [last // b for _, last in spans],
                              "straddling": sum(f // b != l // b for f, l in spans),
                              "hidden": hidden_links(spans, b, a),
                              "global_score": g["score"],
                              "star_score": rows[(L, s, index)]["score"]})

    tables = []
    for L in lengths:
        for s in settings:
            mine = [x for x in lines if x["length"] == L and x["setting"] == s]
            if not mine:
                continue
            groups = []
            for h in range(HOPS + 1):
                grp = [x for x in mine if x["hidden"] == h]
                groups.append({"hidden": h, "samples": len(grp),
                               "global_correct": sum(x["global_score"] == 1.0 for x in grp),
                               "star_correct": sum(x["star_score"] == 1.0 for x in grp)})
            tables.append({"length": L, "setting": s, "label": run.label(s),
                           "block": mine[0]["block"], "anchor": mine[0]["anchor"],
                           "groups": groups})

    argv = [rel(a) if os.path.exists(a) else a for a in sys.argv[1:]]
    command = " ".join(["python3", rel(os.path.abspath(__file__))] + [shlex.quote(a) for a in argv])
    md = ["# Variable tracking: chain links hidden from Star Attention's phase 1", "",
          "Made by", "", "```sh", command, "```", "",
          f"From `{rel(args.samples)}` (the `vt` rows) and the tokenizer of `{rel(args.model)}`: "
          "each sample regenerated from its seed (tasks.py), BOS + context tokenized as "
          "`starinfer eval --chat-template none` does, the token span of each of the chain's 5 "
          "statements found by character offsets. Blocks as runtime/star_plan.c lays them out: "
          "position p (BOS at 0) is in block p // b. A link (statement i -> i+1) is hidden when "
          "the last token of statement i+1 cannot see all of statement i in phase 1: it is in a "
          "block j > 0 and statement i is neither wholly in the anchor (positions below a) nor "
          "in block j. Correct: score 1.0 (all 5 names in the answer). Groups without samples are "
          "left out here (they are in the JSON).", ""]
    for L in lengths:
        md += [f"## {L} tokens", "",
               "| setting | b | a | hidden links | samples | global correct | Star correct |",
               "| --- | --- | --- | --- | --- | --- | --- |"]
        for t in tables:
            if t["length"] != L:
                continue
            for g in t["groups"]:
                if g["samples"]:
                    md.append(f"| {t['label']} | {t['block']} | {t['anchor']} | {g['hidden']} | "
                              f"{g['samples']} | {g['global_correct']} | {g['star_correct']} |")
        md += ["", "All Star settings pooled (sample-setting pairs):", "",
               "| hidden links | pairs | global correct | Star correct |",
               "| --- | --- | --- | --- |"]
        for h in range(HOPS + 1):
            grp = [x for x in lines if x["length"] == L and x["hidden"] == h]
            if grp:
                md.append(f"| {h} | {len(grp)} | {sum(x['global_score'] == 1.0 for x in grp)} | "
                          f"{sum(x['star_score'] == 1.0 for x in grp)} |")
        md.append("")
    straddling = sum(x["straddling"] for x in lines)
    md += [f"Statements straddling a block boundary, summed over samples and settings: "
           f"{straddling} (the rule above looks at every token; `statement_blocks` in the JSON "
           f"gives the block of each statement's last token).", ""]

    with open(args.out_md, "w") as f:
        f.write("\n".join(md))
    with open(args.out_json, "w") as f:
        json.dump({"meta": {"command": command, "samples": rel(args.samples),
                            "model": rel(args.model),
                            "hidden_link": "the last token of statement i+1 is in block j > 0 and "
                                           "some token of statement i is neither below the anchor "
                                           "size a nor in block j (block of position p: p // b)"},
                   "tables": tables, "chains": chains, "per_sample": lines}, f, indent=1)
    print("\n".join(md))
    print(f"vt_blocks: wrote {rel(args.out_md)}, {rel(args.out_json)}")


if __name__ == "__main__":
    main()
