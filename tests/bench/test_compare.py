#!/usr/bin/env python3
"""bench/compare.py on the fixture JSON lines: joins, ratios, targets, errors, bad input."""
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench"))
import compare  # noqa: E402

OURS = os.path.join(HERE, "fixtures", "starinfer.jsonl")
HF = os.path.join(HERE, "fixtures", "hf.jsonl")


def lines(path):
    with open(path) as f:
        return [json.loads(ln) for ln in f if ln.strip()]


class Compare(unittest.TestCase):
    def setUp(self):
        self.ours = compare.model_records(lines(OURS))
        self.hf = compare.model_records(lines(HF))

    def find(self, recs, context, **kw):
        return [r for r in recs if r["context"] == context
                and all(r.get(k) == v for k, v in kw.items())][-1]

    def test_speedup_is_hf_over_ours_and_last_line_wins(self):
        rows = compare.join(self.ours, self.hf)
        row = [x for x in rows if x["ours"]["context"] == 32768][0]
        hf_lines = [r for r in lines(HF) if r.get("context") == 32768 and "kind" not in r]
        self.assertEqual(len(hf_lines), 2)  # measured twice: the second line is the one used
        ours = self.find(self.ours, 32768, attn="global")
        self.assertAlmostEqual(row["speedup"], hf_lines[-1]["ttft_s"]["mean"] / ours["ttft_s"]["mean"])
        self.assertAlmostEqual(row["decode_ratio"], ours["decode_tokens_per_s"]["mean"]
                               / hf_lines[-1]["decode_tokens_per_s"]["mean"])

    def test_targets_pass_and_fail_from_the_numbers(self):
        t = {(x["target"], x["context"]): x for x in compare.targets(self.ours, self.hf)}
        name = "llama-3.1-8b: TTFT speedup over Transformers (global, 1 GPU)"
        for n, need in ((16384, 1.2), (32768, 1.0), (65536, 1.0)):
            o = self.find(self.ours, n, attn="global")["ttft_s"]["mean"]
            h = self.find(self.hf, n)["ttft_s"]["mean"]
            self.assertEqual(t[(name, n)]["ok"], h / o >= need, n)
        self.assertIsNone(t[(name, 131072)]["ok"])  # Transformers ran out of memory there
        g = self.find(self.ours, 131072, attn="global")
        prefill = t[("llama-3.1-8b: prefill fraction of the matmul roofline", 131072)]
        self.assertEqual(prefill["ok"], g["roofline"]["prefill_fraction"] >= 0.8)
        decode = t[("llama-3.1-8b: decode fraction of the bandwidth bound", 32768)]
        self.assertEqual(decode["ok"],
                         self.find(self.ours, 32768, attn="global")["roofline"]["decode_fraction"] >= 0.8)
        oks = {x["ok"] for x in t.values()}
        self.assertTrue(True in oks and False in oks)  # the fixture exercises both outcomes
        self.assertNotIn(("llama-3.1-8b: the same against the matrix rate sustained", 131072), t)

    def test_sustained_rate_adds_a_target_row_and_a_table_cell(self):
        ours = [dict(r) for r in self.ours]
        g = self.find(ours, 131072, attn="global")
        g["roofline"] = dict(g["roofline"], matmul_tflops_sustained=680.0,
                             prefill_fraction_sustained=g["roofline"]["prefill_fraction"] * 1.16)
        t = {(x["target"], x["context"]): x for x in compare.targets(ours, self.hf)}
        row = t[("llama-3.1-8b: the same against the matrix rate sustained", 131072)]
        self.assertAlmostEqual(row["value"], g["roofline"]["prefill_fraction_sustained"])
        self.assertEqual(row["ok"], row["value"] >= 0.8)
        self.assertIn("% sustained)", compare.markdown(ours, self.hf, []))

    def test_star_ratio_and_merge_share(self):
        t = compare.targets(self.ours, self.hf)
        g = self.find(self.ours, 131072, attn="global")["ttft_s"]["mean"]
        for anchor, label, need in ((65536, "anchor = block", 3), (4096, "anchor 4K", 4)):
            s = self.find(self.ours, 131072, attn="star", anchor=anchor)
            row = [x for x in t if label in x["target"]][0]
            self.assertAlmostEqual(row["value"], g / s["ttft_s"]["mean"])
            self.assertEqual(row["ok"], g / s["ttft_s"]["mean"] >= need)
            share = [x for x in t if "merge" in x["target"] and f"anchor {anchor})" in x["target"]][0]
            token_ms = 1000 / s["decode_tokens_per_s"]["mean"]
            expect = s["merge_ms_per_layer"]["mean"] * 32 / token_ms
            self.assertAlmostEqual(share["value"], expect)
            self.assertEqual(share["ok"], expect <= 0.1)

    def test_command_writes_markdown_with_errors(self):
        with tempfile.TemporaryDirectory() as d:
            md = os.path.join(d, "c.md")
            buf = io.StringIO()
            with redirect_stdout(buf):
                self.assertEqual(compare.main([OURS, HF, "--md", md]), 0)
            with open(md) as f:
                text = f.read()
        self.assertEqual(text, buf.getvalue())
        self.assertIn("error: the KV cache needs", text)
        self.assertIn("| FAIL |", text)
        self.assertIn("| pass |", text)
        self.assertIn("| no data |", text)

    def test_bad_input_names_the_file_and_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write(open(OURS).readline() + "{not json\n")
        try:
            p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "compare.py"), f.name, HF],
                               capture_output=True, text=True)
        finally:
            os.unlink(f.name)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"{f.name}:2", p.stderr)
        p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "compare.py"), OURS,
                            "/nonexistent.jsonl"], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cannot read /nonexistent.jsonl", p.stderr)


if __name__ == "__main__":
    unittest.main()
