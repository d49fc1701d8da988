#!/usr/bin/env python3
"""bench/scaling/run.sh --dry-run: the command matrix (strong, weak, global, oversubscribed), bad
flags; bench/scaling/plot.py's speedup and efficiency on fixture JSON lines."""
import io
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUN = os.path.join(REPO, "bench", "scaling", "run.sh")
FIXTURES = os.path.join(HERE, "fixtures", "scaling")
sys.path.insert(0, os.path.join(REPO, "bench", "scaling"))
import plot  # noqa: E402

K = 1024


def dry_run(*args):
    p = subprocess.run(["bash", RUN, "--out", "OUT", "--bin", "BIN", "--dry-run", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [parse(line) for line in p.stdout.splitlines() if line.strip()]


def parse(line):
    """A command as {ranks, flag: value}: the launcher's rank count and starinfer bench's flags."""
    words = shlex.split(line)
    i = words.index("BIN")
    cmd = {"launcher": words[0], "ranks": int(words[i - 1]), "sub": words[i + 1]}
    rest = words[i + 2:]
    j = 0
    while j < len(rest):
        if j + 1 < len(rest) and not rest[j + 1].startswith("--"):
            cmd[rest[j]] = rest[j + 1]
            j += 2
        else:
            cmd[rest[j]] = True
            j += 1
    return cmd


class Matrix(unittest.TestCase):
    def test_eight_gpus(self):
        cmds = dry_run("--gpus", "8")
        self.assertTrue(all(c["launcher"] == "mpirun" and c["sub"] == "bench" for c in cmds))
        self.assertTrue(all(c["--shape"] == "llama-3.1-8b" and c["--device"] == "cuda" for c in cmds))
        strong = [c for c in cmds if c["--json"] == "OUT/strong.jsonl"]
        weak = [c for c in cmds if c["--json"] == "OUT/weak.jsonl"]
        self.assertEqual(len(strong) + len(weak), len(cmds))
        glob = [c for c in strong if c["--attn"] == "global"]
        self.assertEqual([(c["ranks"], int(c["--lengths"])) for c in glob], [(1, 128 * K)])
        star = [c for c in strong if c["--attn"] == "star"]
        self.assertEqual(sorted((int(c["--lengths"]), c["ranks"]) for c in star),
                         sorted((n, r) for n in (128 * K, 512 * K) for r in (1, 2, 4, 8)))
        for c in star + weak:
            n, r, b = int(c["--lengths"]), c["ranks"], int(c["--block-size"])
            self.assertEqual(b, n // r if n <= 128 * K else 32 * K, c)
            anchors = [int(a) for a in c["--anchor-size"].split(",")]
            self.assertEqual(anchors[0], b)  # the paper's: anchor = block
            self.assertIn(4 * K, anchors)  # and a smaller one
        self.assertEqual(sorted((c["ranks"], int(c["--lengths"])) for c in weak),
                         [(r, r * 128 * K) for r in (1, 2, 4, 8)])
        self.assertEqual(max(int(c["--lengths"]) for c in weak), 1024 * K)

    def test_fewer_gpus_fewer_ranks(self):
        cmds = dry_run("--gpus", "2", "--launcher", "srun", "--repeat", "3")
        self.assertEqual(sorted({c["ranks"] for c in cmds}), [1, 2])
        self.assertTrue(all(c["launcher"] == "srun" and c["--repeat"] == "3" for c in cmds))
        self.assertEqual(len([c for c in cmds if c["--json"] == "OUT/weak.jsonl"]), 2)

    def test_oversubscribe_check(self):
        cmds = dry_run("--gpus", "1", "--oversubscribe-check")
        self.assertEqual([c["ranks"] for c in cmds], [4, 8])
        for c in cmds:
            self.assertEqual((c["--shape"], c["--attn"]), ("tiny", "star"))
            self.assertIs(c["--share-gpus"], True)
            self.assertEqual(int(c["--block-size"]) * c["ranks"], int(c["--lengths"]))

    def test_sbatch_runs_the_matrix_through_srun(self):
        env = dict(os.environ, SLURM_NTASKS="4", SLURM_SUBMIT_DIR=REPO, DRY_RUN="1", OUT="O",
                   STARINFER_BIN="BIN", REPEAT="1")
        p = subprocess.run(["bash", os.path.join(REPO, "bench", "scaling", "scaling.sbatch")], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        cmds = [parse(line) for line in p.stdout.splitlines()]
        self.assertEqual(sorted({c["ranks"] for c in cmds}), [1, 2, 4])
        self.assertTrue(all(line.startswith("srun --mpi=pmix") for line in p.stdout.splitlines()))
        self.assertEqual(len(cmds), len(dry_run("--gpus", "4")))

    def test_bad_flags(self):
        for args, word in ((["--gpus", "0"], "--gpus"), (["--gpus", "x"], "--gpus"),
                           (["--gpus", "2", "--launcher", "ssh"], "--launcher"),
                           (["--gpus", "2", "--bogus"], "--bogus")):
            p = subprocess.run(["bash", RUN, "--out", "OUT", "--dry-run", *args], capture_output=True,
                               text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(word, p.stderr)
        p = subprocess.run(["bash", RUN, "--out", "OUT", "--gpus", "1", "--bin", "/nonexistent"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no starinfer at '/nonexistent'", p.stderr)


class Table(unittest.TestCase):
    def test_speedup_and_efficiency(self):
        strong = plot.load(os.path.join(FIXTURES, "strong.jsonl"))
        t = {(r["context"], r["ranks"], r["anchor"]): r["ttft_s"]["mean"] for r in strong
             if r["attn"] == "star"}
        g = [r["ttft_s"]["mean"] for r in strong if r["attn"] == "global" and r["context"] == 128 * K][0]
        rows = {(r["context"], r["ranks"], r["anchor"]): r for r in plot.strong_rows(strong)}
        for (n, ranks, anchor), tt in t.items():
            label = "a = b" if anchor == (128 * K // ranks if n <= 128 * K else 32 * K) else f"a = {anchor}"
            r = rows[(n, ranks, label)]
            s = t[(n, 1, anchor if label != "a = b" else (n if n <= 128 * K else 32 * K))] / tt
            self.assertAlmostEqual(r["speedup"], s)
            self.assertAlmostEqual(r["efficiency"], s / ranks)
            self.assertEqual(r["vs_global"] is None, n != 128 * K)  # global failed at 512K
            if n == 128 * K:
                self.assertAlmostEqual(r["vs_global"], g / tt)
        weak = plot.load(os.path.join(FIXTURES, "weak.jsonl"))
        base = {r["anchor"] == r["block"]: r["ttft_s"]["mean"] for r in weak if r["ranks"] == 1}
        for r in plot.weak_rows(weak):
            src = [w for w in weak if w["ranks"] == r["ranks"] and plot.anchor_label(w) == r["anchor"]][0]
            self.assertAlmostEqual(r["efficiency"], base[r["anchor"] == "a = b"] / src["ttft_s"]["mean"])

    def test_markdown_lists_failures(self):
        with tempfile.TemporaryDirectory() as d:
            for f in ("strong.jsonl", "weak.jsonl"):
                shutil.copy(os.path.join(FIXTURES, f), d)
            strong = plot.strong_rows(plot.load(os.path.join(d, "strong.jsonl")))
            errors = [r for r in plot.load(os.path.join(d, "strong.jsonl")) if "error" in r]
            text = plot.table(strong, [], errors)
        self.assertEqual(len(errors), 1)
        self.assertIn("the KV cache needs 64.0 GiB", text)
        self.assertEqual(text.count("\n| 131072 |"), 8)

    def test_empty_folder_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(SystemExit) as e:
                with redirect_stdout(io.StringIO()):
                    plot.main([d])
        self.assertIn("no strong.jsonl or weak.jsonl", str(e.exception.code))


if __name__ == "__main__":
    unittest.main()
