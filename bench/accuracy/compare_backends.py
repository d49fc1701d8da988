#!/usr/bin/env python3
"""The same held-out samples, greedy, on the CPU backend and on the GPU backend: identical answers?

Runs bench/accuracy/run twice over the same requests, `--device cpu` then `--device cuda`
(`--share-gpus`, so Star's ranks may share GPUs), for global attention and Star Attention with
blocks of n/4 (anchor = block), then compares the generated token ids sample by sample. With
`--dtype fp32` the GPU runs in fp32 throughout (starinfer's `--dtype fp32`) instead of bf16, and
with `--require-identical` any differing answer makes the exit status 1. Writes into --out:

  backends.md     per length and setting: samples compared, identical answers, and for each
                  sample that differs the first differing token (position, CPU id, GPU id)
  backends.json   the same, for machines
  cpu/, cuda/     each backend's own accuracy report (bench/accuracy/run --out)
                  (cuda-fp32/ with --dtype fp32)

The answers stay in --work (resumable, as for run). With --report-only nothing is run.

With --against SAMPLES (the samples.jsonl of an earlier CPU run, such as the committed one in
bench/results/accuracy/) only the GPU runs, and its answers are compared as text with the CPU's
for the same samples (same seed), writing backends.md and backends.json likewise.

  python3 bench/accuracy/compare_backends.py --out bench/results/accuracy-backends --lengths 4096
  python3 bench/accuracy/compare_backends.py --out OUT --lengths 4096,8192 --samples 20 \
      --against bench/results/accuracy/samples.jsonl
"""

import argparse
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "run")


def load_run():
    """bench/accuracy/run as a module (its file has no .py suffix), for its file naming."""
    loader = importlib.machinery.SourceFileLoader("accuracy_run", RUN)
    spec = importlib.util.spec_from_loader("accuracy_run", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def first_difference(a, b):
    """Index of the first token where a and b differ (the shorter one's end counts), or None."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def compare_answers(rows, cpu, gpu):
    """rows: the requests' metadata (task, index) by line; cpu, gpu: each backend's answers,
    {line: record}. One entry per sample answered by both backends."""
    out = []
    for line, row in enumerate(rows, start=1):
        if line not in cpu or line not in gpu:
            continue
        a, b = cpu[line], gpu[line]
        entry = {"line": line, "task": row["task"], "index": row["index"]}
        if "error" in a or "error" in b:
            entry.update(identical=False, error=a.get("error") or b.get("error"))
        else:
            ta, tb = a.get("tokens", []), b.get("tokens", [])
            i = first_difference(ta, tb)
            entry["identical"] = i is None
            if i is not None:
                entry.update(position=i, cpu_token=ta[i] if i < len(ta) else None,
                             cuda_token=tb[i] if i < len(tb) else None,
                             cpu_answer=a.get("answer", "")[:120], cuda_answer=b.get("answer", "")[:120])
        out.append(entry)
    return out


def compare_with_samples(cpu_samples, gpu_samples):
    """Both are samples.jsonl rows of bench/accuracy/run; the CPU's name the answers to compare
    with. One result per (length, setting) the GPU answered, its samples matched by task, index
    and seed."""
    cpu = {(r["length"], r["setting"], r["task"], r["index"]): r for r in cpu_samples}
    groups = {}
    for g in gpu_samples:
        key = (g["length"], g["setting"], g["task"], g["index"])
        c = cpu.get(key)
        if c is None or c["seed"] != g["seed"]:
            continue
        entry = {"task": g["task"], "index": g["index"], "identical": c["answer"] == g["answer"]}
        if not entry["identical"]:
            a, b = c["answer"], g["answer"]
            i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            entry.update(position=f"char {i}", cpu_token="", cuda_token="", cpu_answer=a[:120],
                         cuda_answer=b[:120], cpu_score=c["score"], cuda_score=g["score"])
        groups.setdefault((g["length"], g["setting"]), []).append(entry)
    return [{"length": L, "setting": setting, "samples": v} for (L, setting), v in groups.items()]


def report(results, failed):
    lines = ["# CPU and GPU backends on the same held-out samples (greedy)", ""]
    lines += [f"The {d} run failed (its logs are beside the answers); samples it did not answer "
              f"are not compared.\n" for d in failed]
    lines += [
             "| length | setting | samples | identical answers |", "| ---: | --- | ---: | ---: |"]
    for r in results:
        same = sum(e["identical"] for e in r["samples"])
        lines.append(f"| {r['length']} | {r['setting']} | {len(r['samples'])} | {same} |")
    diffs = [(r, e) for r in results for e in r["samples"] if not e["identical"]]
    if diffs:
        lines += ["", "Where they differ (first differing generated token):", "",
                  "| length | setting | task | sample | position | CPU token | GPU token | CPU answer | GPU answer |",
                  "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]
        for r, e in diffs:
            if "error" in e:
                lines.append(f"| {r['length']} | {r['setting']} | {e['task']} | {e['index']} | "
                             f"error: {e['error'][:80]} | | | | |")
                continue
            esc = [e[k].replace("|", "\\|").replace("\n", " ") for k in ("cpu_answer", "cuda_answer")]
            lines.append(f"| {r['length']} | {r['setting']} | {e['task']} | {e['index']} | "
                         f"{e['position']} | {e['cpu_token']} | {e['cuda_token']} | {esc[0]} | {esc[1]} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default=os.path.join(HERE, "model"))
    ap.add_argument("--lengths", default="4096")
    ap.add_argument("--samples", type=int, default=2, help="held-out samples per task and length")
    ap.add_argument("--samples-at", action="append", default=[], metavar="L=N",
                    help="N samples at length L (as run's option; with --against)")
    ap.add_argument("--tasks", default=None, help="comma-separated (default: every task)")
    ap.add_argument("--settings", default="global n/4,b/1")
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--starinfer", default=None, help="the binary (default: run's)")
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--report-only", action="store_true", help="compare what is in --work")
    ap.add_argument("--against", default=None, metavar="SAMPLES",
                    help="a CPU run's samples.jsonl: run only the GPU and compare with it")
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "fp32"),
                    help="the GPU's number formats (starinfer --dtype)")
    ap.add_argument("--require-identical", action="store_true",
                    help="exit 1 when any answer differs between the backends")
    args = ap.parse_args(argv)
    args.gpu = "cuda" if args.dtype == "bf16" else "cuda-fp32"
    run = load_run()
    if args.against:
        return against(args, run)
    common = ["--model", args.model, "--lengths", args.lengths, "--samples", str(args.samples),
              "--settings", args.settings, "--ranks", str(args.ranks), "--jobs", str(args.jobs),
              "--threads", str(args.threads), "--work", args.work]
    common += ["--tasks", args.tasks] if args.tasks else []
    common += ["--starinfer", args.starinfer] if args.starinfer else []
    failed = []
    if not args.report_only:
        for dev in ("cpu", args.gpu):
            cmd = [sys.executable, RUN, *common, "--device", dev, "--out", os.path.join(args.out, dev)]
            cmd += ["--share-gpus"] if dev != "cpu" else []
            print(f"compare_backends: {' '.join(cmd)}", file=sys.stderr, flush=True)
            if subprocess.run(cmd).returncode != 0:
                failed.append(dev)
    results = []
    for L in (int(x) for x in args.lengths.split(",")):
        meta = os.path.join(args.work, f"requests-{L}.jsonl.meta.json")
        if not os.path.exists(meta):
            sys.exit(f"compare_backends: no requests at {L} tokens in {args.work}; run without --report-only")
        with open(meta) as f:
            rows = json.load(f)["rows"]
        for setting in run.settings_for(args.settings):
            cpu, gpu = (run.read_answers(run.answers_path(argparse.Namespace(device=d, work=args.work),
                                                          L, setting)) for d in ("cpu", args.gpu))
            results.append({"length": L, "setting": run.label(setting),
                            "samples": compare_answers(rows, cpu, gpu)})
    os.makedirs(args.out, exist_ok=True)
    text = report(results, failed)
    with open(os.path.join(args.out, "backends.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "backends.json"), "w") as f:
        json.dump({"lengths": args.lengths, "settings": args.settings, "dtype": args.dtype,
                   "failed_runs": failed, "results": results}, f, indent=1)
    sys.stdout.write(text)
    if failed:
        print(f"compare_backends: the {', '.join(failed)} run(s) failed; see the logs in {args.work}",
              file=sys.stderr)
    return status(args, results, failed)


def status(args, results, failed):
    """0, or 1 when a run failed, nothing was compared, or (with --require-identical) any
    answer differs."""
    n = sum(len(r["samples"]) for r in results)
    differ = sum(not e["identical"] for r in results for e in r["samples"])
    if args.require_identical and differ:
        print(f"compare_backends: {differ} of {n} answers differ between the CPU and the GPU "
              f"({args.dtype})", file=sys.stderr)
    return 1 if failed or n == 0 or (args.require_identical and differ) else 0


def against(args, run):
    try:
        with open(args.against) as f:
            cpu_samples = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        sys.exit(f"compare_backends: --against {args.against}: {e}")
    out = os.path.join(args.out, args.gpu)
    cmd = [sys.executable, RUN, "--model", args.model, "--lengths", args.lengths, "--samples",
           str(args.samples), "--settings", args.settings, "--ranks", str(args.ranks), "--jobs",
           str(args.jobs), "--threads", str(args.threads), "--work", args.work, "--device", args.gpu,
           "--share-gpus", "--out", out]
    cmd += ["--tasks", args.tasks] if args.tasks else []
    cmd += ["--starinfer", args.starinfer] if args.starinfer else []
    cmd += sum((["--samples-at", x] for x in args.samples_at), [])
    failed = []
    if not args.report_only:
        print(f"compare_backends: {' '.join(cmd)}", file=sys.stderr, flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(args.gpu)
    try:
        with open(os.path.join(out, "samples.jsonl")) as f:
            gpu_samples = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        sys.exit(f"compare_backends: the GPU run left no samples.jsonl in {out}: {e}")
    results = compare_with_samples(cpu_samples, gpu_samples)
    for r in results:
        r["setting"] = run.label(r["setting"])
    os.makedirs(args.out, exist_ok=True)
    text = report(results, failed).replace(
        "(first differing generated token)", "(first differing character of the answer)")
    text += f"\nCPU answers: {args.against}; GPU answers: this run.\n"
    with open(os.path.join(args.out, "backends.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "backends.json"), "w") as f:
        json.dump({"lengths": args.lengths, "settings": args.settings, "dtype": args.dtype,
                   "against": args.against, "failed_runs": failed, "results": results}, f, indent=1)
    sys.stdout.write(text)
    return status(args, results, failed)


if __name__ == "__main__":
    sys.exit(main())
