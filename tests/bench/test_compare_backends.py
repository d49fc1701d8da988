#!/usr/bin/env python3
"""bench/accuracy/compare_backends.py on answers written here in starinfer eval's format: which
samples agree, the first differing token, errors, the files it writes."""
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench", "accuracy"))
import compare_backends as cb  # noqa: E402


def write_lines(path, recs):
    with open(path, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")


class Backends(unittest.TestCase):
    def test_first_difference(self):
        self.assertIsNone(cb.first_difference([1, 2, 3], [1, 2, 3]))
        self.assertEqual(cb.first_difference([1, 2, 3], [1, 5, 3]), 1)
        self.assertEqual(cb.first_difference([1, 2], [1, 2, 3]), 2)
        self.assertEqual(cb.first_difference([], [4]), 0)

    def test_against_cpu_samples(self):
        cpu = [{"length": 4096, "setting": "global", "task": "vt", "index": 0, "seed": 11,
                "score": 1.0, "answer": "A B C"},
               {"length": 4096, "setting": "global", "task": "vt", "index": 1, "seed": 12,
                "score": 1.0, "answer": "D E"},
               {"length": 4096, "setting": "n/4,b/1", "task": "vt", "index": 0, "seed": 11,
                "score": 0.0, "answer": "A"}]
        gpu = [dict(cpu[0]), dict(cpu[1], answer="D F", score=0.5),
               dict(cpu[2], seed=99)]  # another sample under the same name: not compared
        res = {(r["length"], r["setting"]): r["samples"] for r in cb.compare_with_samples(cpu, gpu)}
        self.assertEqual(list(res), [(4096, "global")])
        same = [e["identical"] for e in res[(4096, "global")]]
        self.assertEqual(same, [True, False])
        diff = res[(4096, "global")][1]
        self.assertEqual((diff["position"], diff["cpu_answer"], diff["cuda_answer"]),
                         ("char 2", "D E", "D F"))

    def test_report_from_answer_files(self):
        rows = [{"task": "niah_single_1", "index": 0}, {"task": "vt", "index": 0},
                {"task": "cwe", "index": 0}, {"task": "cwe", "index": 1}]
        cpu = [{"line": 1, "tokens": [5, 6, 7], "answer": "1234567"},
               {"line": 2, "tokens": [8, 9, 10, 11], "answer": "VAR A VAR B"},
               {"line": 3, "tokens": [1], "answer": "x"}]
        cuda = [{"line": 1, "tokens": [5, 6, 7], "answer": "1234567"},
                {"line": 2, "tokens": [8, 9, 12, 11], "answer": "VAR A VAR C"},
                {"line": 3, "error": "out of memory on rank 1"}]
        with tempfile.TemporaryDirectory() as d:
            work, out = os.path.join(d, "work"), os.path.join(d, "out")
            os.makedirs(work)
            with open(os.path.join(work, "requests-2048.jsonl.meta.json"), "w") as f:
                json.dump({"rows": rows}, f)
            write_lines(os.path.join(work, "out-2048-global.jsonl"), cpu)
            write_lines(os.path.join(work, "out-2048-global-cuda.jsonl"), cuda)
            write_lines(os.path.join(work, "out-2048-n4-b1.jsonl"), cpu[:1])
            write_lines(os.path.join(work, "out-2048-n4-b1-cuda.jsonl"), cpu[:1])
            buf = io.StringIO()
            with redirect_stdout(buf):
                rc = cb.main(["--report-only", "--lengths", "2048", "--work", work, "--out", out])
            self.assertEqual(rc, 0)
            with open(os.path.join(out, "backends.json")) as f:
                res = json.load(f)["results"]
            with open(os.path.join(out, "backends.md")) as f:
                md = f.read()
        self.assertEqual(md, buf.getvalue())
        glob = [r for r in res if r["setting"] == "global"][0]["samples"]
        self.assertEqual([e["line"] for e in glob], [1, 2, 3])  # line 4: answered by neither
        self.assertEqual([e["identical"] for e in glob], [True, False, False])
        self.assertEqual((glob[1]["position"], glob[1]["cpu_token"], glob[1]["cuda_token"]), (2, 10, 12))
        self.assertIn("out of memory", glob[2]["error"])
        star = [r for r in res if r["setting"] == "b=n/4 a=b"][0]["samples"]
        self.assertEqual([e["identical"] for e in star], [True])
        self.assertIn("| 2048 | global | 3 | 1 |", md)
        self.assertIn("| 2048 | global | vt | 0 | 2 | 10 | 12 |", md)

    def test_fp32_answers_and_require_identical(self):
        """--dtype fp32 compares the files of the GPU's fp32 run (-cuda-fp32), and
        --require-identical turns one differing answer into exit status 1."""
        rows = [{"task": "vt", "index": 0}, {"task": "vt", "index": 1}]
        cpu = [{"line": 1, "tokens": [5, 6], "answer": "ab"},
               {"line": 2, "tokens": [7], "answer": "c"}]
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "requests-2048.jsonl.meta.json"), "w") as f:
                json.dump({"rows": rows}, f)
            write_lines(os.path.join(d, "out-2048-global.jsonl"), cpu)
            write_lines(os.path.join(d, "out-2048-global-cuda-fp32.jsonl"), cpu)
            write_lines(os.path.join(d, "out-2048-global-cuda.jsonl"),
                        [cpu[0], dict(cpu[1], tokens=[8], answer="d")])
            args = ["--report-only", "--lengths", "2048", "--settings", "global", "--work", d,
                    "--out", d, "--require-identical"]
            with redirect_stdout(io.StringIO()):
                same = cb.main(args + ["--dtype", "fp32"])
                with open(os.path.join(d, "backends.json")) as f:
                    fp32 = json.load(f)
                differ = cb.main(args)
        self.assertEqual((same, differ), (0, 1))
        self.assertEqual(fp32["dtype"], "fp32")
        self.assertEqual([e["identical"] for e in fp32["results"][0]["samples"]], [True, True])

    def test_missing_requests_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(SystemExit) as e:
                cb.main(["--report-only", "--lengths", "4096", "--work", d, "--out", d])
        self.assertIn("no requests at 4096 tokens", str(e.exception.code))


if __name__ == "__main__":
    unittest.main()
