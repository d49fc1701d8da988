#!/usr/bin/env python3
"""bench/scaling/plot.py end to end on fixture JSON lines: the PNG and the table (skipped, exit
77, without matplotlib)."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(HERE, "fixtures", "scaling")


class Plot(unittest.TestCase):
    def test_png_and_table(self):
        with tempfile.TemporaryDirectory() as d:
            for f in ("strong.jsonl", "weak.jsonl"):
                shutil.copy(os.path.join(FIXTURES, f), d)
            p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "scaling", "plot.py"), d],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(d, "scaling.png"), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            self.assertGreater(os.path.getsize(os.path.join(d, "scaling.png")), 10000)
            with open(os.path.join(d, "scaling.md")) as f:
                self.assertEqual(f.read(), p.stdout)
        self.assertIn("## Strong scaling", p.stdout)
        self.assertIn("## Weak scaling", p.stdout)


if __name__ == "__main__":
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("skipped: no matplotlib (apt-get install python3-matplotlib)")
        sys.exit(77)
    unittest.main()
