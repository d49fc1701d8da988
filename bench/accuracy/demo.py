#!/usr/bin/env python3
"""One question over a freshly generated long haystack, answered by the trained accuracy model
with Star Attention across 4 MPI ranks.

Generates a single-needle sample (niah_single_2: prose from `fortunes` with a special magic
number hidden in it; a seed never used in training, random unless --seed is given), runs
`starinfer run --json` on it through launcher/starinfer-mpirun, and prints the question, the
model's answer, the expected answer and the phase timings per rank.

  python3 bench/accuracy/demo.py [--length 8192] [--ranks 4] [--seed S] [--task niah_single_2]

Needs bench/accuracy/data (python3 bench/accuracy/prepare_data.py, from the Debian packages
wamerican and fortunes) and a built starinfer ($STARINFER_BIN, else build/starinfer).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import tasks  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(HERE, "model"))
    ap.add_argument("--task", default="niah_single_2", choices=tasks.TASKS)
    ap.add_argument("--length", type=int, default=8192, help="prompt tokens")
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--block-size", type=int, help="default: the context split over the ranks")
    ap.add_argument("--anchor-size", type=int, help="default: the block size")
    ap.add_argument("--seed", type=int, help=f"sample seed, from {tasks.DEMO_SEEDS[0]} to "
                                             f"{tasks.DEMO_SEEDS[1] - 1} (default: random)")
    ap.add_argument("--starinfer", default=os.environ.get(
        "STARINFER_BIN", os.path.join(REPO, "build", "starinfer")))
    args = ap.parse_args()
    if not os.path.isdir(tasks.DATA):
        subprocess.run([sys.executable, os.path.join(HERE, "prepare_data.py")], check=True)
    seed = args.seed
    if seed is None:
        seed = random.SystemRandom().randrange(*tasks.DEMO_SEEDS)
    if not tasks.DEMO_SEEDS[0] <= seed < tasks.DEMO_SEEDS[1]:
        sys.exit(f"demo: --seed must be from {tasks.DEMO_SEEDS[0]} to {tasks.DEMO_SEEDS[1] - 1}: "
                 f"smaller seeds are the held-out evaluation's, larger ones training's")
    try:
        import tokenizers  # noqa: F401
        sample = tasks.Generator(args.model).sample(args.task, args.length, seed)
    except ImportError:
        # Without the Python tokenizers library the length is estimated (the model's tokenizer
        # makes about 3.4 characters a token of this text); starinfer reports the exact count.
        gen = tasks.Generator(None, chars_per_token=3.4)
        sample = gen.sample(args.task, args.length, seed, exact=False)
    with tempfile.TemporaryDirectory() as work:
        ctx, qry = os.path.join(work, "context.txt"), os.path.join(work, "query.txt")
        with open(ctx, "w", encoding="utf-8") as f:
            f.write(sample["context"])
        with open(qry, "w", encoding="utf-8") as f:
            f.write(sample["query"])
        cmd = [os.path.join(REPO, "launcher", "starinfer-mpirun"), "--np", str(args.ranks),
               "--network", "loopback", "--oversubscribe", "--", "run", "--model", args.model,
               "--context", ctx, "--query-file", qry, "--chat-template", "none",
               "--max-new-tokens", str(sample["max_new_tokens"]), "--json"]
        if args.block_size:
            cmd += ["--block-size", str(args.block_size)]
        if args.anchor_size:
            cmd += ["--anchor-size", str(args.anchor_size)]
        env = dict(os.environ, STARINFER_BIN=args.starinfer)
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        print(f"demo: {args.task}, seed {seed}, {args.length} tokens, {args.ranks} ranks", flush=True)
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        sys.exit(f"demo: starinfer failed (exit {p.returncode}); its messages are above")
    r = json.loads(p.stdout)
    answer = r["answer"].strip()
    question = sample["query"].strip().split("\n")[0]
    ok = tasks.score(answer, sample["answers"]) == 1.0
    t = r["timings"]
    print()
    print(f"context:   {r['context_tokens']} tokens in {r['blocks']} blocks of {r['block_size']} "
          f"(anchor {r['anchor_size']}) on {r['ranks']} ranks, Star Attention")
    print(f"question:  {question}")
    print(f"answer:    {answer}")
    print(f"expected:  {', '.join(sample['answers'])}   ({'correct' if ok else 'wrong'})")
    print()
    print("rank | context tokens | phase 1 (s) | phase 2 (s) | merge (s) | memory (MiB)")
    for i in range(r["ranks"]):
        print(f"{i:4d} | {r['rank_context_tokens'][i]:14d} | {t['phase1_s'][i]:11.3f} | "
              f"{t['phase2_s'][i]:11.3f} | {t['merge_s'][i]:9.4f} | {r['memory_mib'][i]:12.1f}")
    print(f"time to first token {t['time_to_first_token_s']:.3f} s, decode {t['decode_s']:.3f} s "
          f"({t['decode_tokens_per_s']:.1f} tokens/s)")


if __name__ == "__main__":
    main()
