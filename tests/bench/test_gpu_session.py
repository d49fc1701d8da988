#!/usr/bin/env python3
"""bench/gpu_session.sh with a stand-in starinfer and nvidia-smi (two GPUs) on a machine without
one: every step runs, is timed and logged, a failed step does not stop the others, the exit code
says that something failed, and the budget skips what does not fit."""
import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

FAKE_STARINFER = r"""#!/usr/bin/env bash
# Stand-in for `starinfer bench`: one JSON line per length into --json.
json="" lengths="" attn=global
while (($#)); do
  case $1 in --json) json=$2; shift 2 ;; --lengths) lengths=$2; shift 2 ;; --attn) attn=$2; shift 2 ;;
  *) shift ;; esac
done
for n in ${lengths//,/ }; do
  echo "{\"tool\":\"starinfer\",\"shape\":\"llama-3.1-8b\",\"attn\":\"$attn\",\"ranks\":1,\"context\":$n,\"ttft_s\":{\"mean\":1.0,\"std\":0,\"min\":1.0,\"max\":1.0}}" >>"$json"
done
"""
FAKE_SMI = "#!/bin/sh\necho 'GPU 0: Stand-in (UUID: GPU-0)'\necho 'GPU 1: Stand-in (UUID: GPU-1)'\n"


def session(d, *extra):
    bindir, tools, out = (os.path.join(d, x) for x in ("bin", "tools", "out"))
    for folder, name, text in ((bindir, "starinfer", FAKE_STARINFER), (tools, "nvidia-smi", FAKE_SMI)):
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    env = dict(os.environ, PATH=tools + os.pathsep + os.environ["PATH"])
    p = subprocess.run(["bash", os.path.join(REPO, "bench", "gpu_session.sh"), out, "--bin", bindir, *extra],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=280)
    with open(os.path.join(out, "summary.txt")) as f:
        summary = {ln.split()[0]: ln for ln in f if ln.strip()}
    return p, out, summary


class Session(unittest.TestCase):
    def test_steps_run_past_failures(self):
        with tempfile.TemporaryDirectory() as d:
            p, out, summary = session(d)
            with open(os.path.join(out, "starinfer.jsonl")) as f:
                lines = f.read().splitlines()
            logs = set(os.listdir(out))
        self.assertEqual(p.returncode, 1, p.stderr)  # the baseline needs a GPU: failed steps
        for name in ("hf_short", "hf_long", "compare"):
            self.assertNotIn("exit 0 ", summary[name], name)
        for name in ("starinfer_short", "starinfer_long", "star_np2"):
            self.assertIn("exit 0 ", summary[name], name)
            self.assertIn(f"{name}.log", logs)
        self.assertEqual(len([ln for ln in lines if '"attn":"global"' in ln]), 4)
        self.assertGreaterEqual(len([ln for ln in lines if '"attn":"star"' in ln]), 1)
        self.assertIn("failed steps", p.stderr)

    def test_budget_skips_steps(self):
        with tempfile.TemporaryDirectory() as d:
            p, _, summary = session(d, "--budget", "10")
        self.assertEqual(p.returncode, 1)
        self.assertIn("skipped", summary["hf_short"])
        self.assertIn("skipped", summary["starinfer_long"])


if __name__ == "__main__":
    unittest.main()
