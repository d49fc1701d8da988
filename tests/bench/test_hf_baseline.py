#!/usr/bin/env python3
"""bench/hf_baseline.py on the CPU with the tiny shape (skipped, exit 77, without torch and
transformers): its JSON lines, its greedy decoding against Transformers' generate(), an error at
one length, bad flags."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(REPO, "bench", "hf_baseline.py")
sys.path.insert(0, os.path.join(REPO, "bench"))
import hf_baseline  # noqa: E402


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)


class Baseline(unittest.TestCase):
    def test_cpu_tiny_run(self):
        lengths = [48, 96]
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "hf.jsonl")
            p = run("--device", "cpu", "--shape", "tiny", "--lengths", ",".join(map(str, lengths)),
                    "--query-tokens", "4", "--decode-tokens", "3", "--repeat", "2", "--rates",
                    "--gemm-size", "64", "--copy-mib", "2", "--sdpa-kernel", "--sdpa-lengths", "64",
                    "--json", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out) as f:
                recs = [json.loads(ln) for ln in f]
        models = [r for r in recs if "kind" not in r]
        self.assertEqual([r["context"] for r in models], lengths)
        for r in models:
            self.assertEqual((r["tool"], r["shape"], r["device"], r["attn"]),
                             ("transformers", "tiny", "cpu", "global"))
            self.assertNotIn("error", r)
            for key in ("ttft_s", "decode_tokens_per_s"):
                st = r[key]
                self.assertTrue(0 < st["min"] <= st["mean"] <= st["max"], (key, st))
                self.assertGreaterEqual(st["std"], 0)
            self.assertEqual(r["query_tokens"], 4)
            self.assertIn(r["logits"], ("last token only (logits_to_keep)",
                                        "last token only (num_logits_to_keep)", "every token"))
        rates = [r for r in recs if r.get("kind") == "rates"]
        self.assertEqual(len(rates), 1)
        self.assertGreater(rates[0]["matmul_tflops"], 0)
        self.assertGreater(rates[0]["mem_gbps"], 0)
        sdpa = [r for r in recs if r.get("kind") == "sdpa"]
        self.assertEqual(len(sdpa), 1)
        n, d, h = 64, sdpa[0]["head_dim"], sdpa[0]["heads"]
        self.assertEqual(sdpa[0]["flops"], 4 * n * n / 2 * d * h)
        self.assertAlmostEqual(sdpa[0]["tflops"], sdpa[0]["flops"] / sdpa[0]["time_s"]["mean"] / 1e12)
        table = [ln for ln in p.stdout.splitlines() if ln.startswith("| tiny |")]
        self.assertEqual(len(table), len(lengths))
        self.assertIn("causal half", p.stdout)

    def test_greedy_decoding_matches_generate(self):
        try:
            import torch
        except ImportError:
            self.skipTest("no torch")
        dev = hf_baseline.Device(torch, "cpu")
        model = hf_baseline.build_model(torch, "tiny", dev, 64, seed=3)
        self.assertEqual(next(model.parameters()).dtype, torch.bfloat16)
        keep, _ = hf_baseline.last_logits_kwargs(model)
        ids = torch.randint(0, model.config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(5))
        with torch.inference_mode():
            tok, cache = hf_baseline.prefill(model, ids, keep)
            toks, _ = hf_baseline.decode(model, tok, cache, 6, keep)
            ours = torch.cat([tok] + toks, dim=1)[0].tolist()
            ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=7,
                                 min_new_tokens=7, do_sample=False, pad_token_id=0)
        self.assertEqual(ours, ref[0, ids.shape[1]:].tolist())

    def test_an_error_at_one_length_is_recorded_and_the_run_goes_on(self):
        import torch
        dev = hf_baseline.Device(torch, "cpu")
        oom = getattr(torch, "OutOfMemoryError", RuntimeError)

        def measure(n):
            if n == 2:
                raise oom("CUDA out of memory. Tried to allocate 64.00 GiB")
            return {"ttft_s": hf_baseline.stats([float(n)])}
        recs = hf_baseline.run_lengths(torch, dev, [1, 2, 3], {"tool": "transformers"}, measure)
        self.assertEqual([r["context"] for r in recs], [1, 2, 3])
        self.assertTrue(recs[1]["error"].startswith("out of memory at context 2"))
        self.assertNotIn("error", recs[0])
        self.assertEqual(recs[2]["ttft_s"]["mean"], 3.0)

    def test_bad_flags(self):
        p = run("--device", "cpu", "--lengths", "16k")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--lengths '16k'", p.stderr)
        p = run("--device", "cpu", "--shape", "llama-9")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--shape", p.stderr)


if __name__ == "__main__":
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        print(f"skipped: {e} (pip install torch transformers)")
        sys.exit(77)
    unittest.main()
