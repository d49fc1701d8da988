#!/usr/bin/env bash
# From launch to the first token of a Hugging Face model directory on one GPU, the load included:
# starinfer (each NAME=BINARY given, e.g. two builds) against Transformers (bench/hf_load.py),
# alternating, REPEATS rounds, with the model's files already in the page cache (read once first);
# with --cold, dropped from the page cache before each process instead (posix_fadvise DONTNEED,
# which needs no privileges), so that the disk sets the pace.
#   bash bench/load_time.sh [--cold] MODEL_DIR OUT REPEATS NAME=BINARY...
# Writes OUT/load.jsonl (one line per process) and OUT/load.md (medians); each starinfer process
# is `generate` of one token from a short prompt (LOAD_DEVICE=cpu for a try without a GPU), its
# stderr kept as OUT/NAME-RUN.err.
set -uo pipefail
cold=0
if [[ ${1:-} == --cold ]]; then
  cold=1
  shift
fi
model=$1 out=$2 reps=$3
shift 3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$out"
: >"$out/load.jsonl"
# Before each process: the files in the page cache (warm), or out of it (--cold).
prepare() {
  if ((cold)); then
    python3 -c 'import os, sys
os.sync()
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' \
      "$model"/*.safetensors
  else
    cat "$model"/*.safetensors >/dev/null
  fi
}
for ((r = 1; r <= reps; r++)); do
  for nb in "$@"; do
    name=${nb%%=*} bin=${nb#*=}
    prepare
    t0=$(date +%s.%N)
    "$bin" generate --model "$model" --prompt "The capital of France is" --max-new-tokens 1 \
      --device "${LOAD_DEVICE:-cuda}" --json >"$out/$name-$r.json" 2>"$out/$name-$r.err"
    rc=$?
    t1=$(date +%s.%N)
    python3 - "$name" "$r" "$rc" "$t0" "$t1" "$out/$name-$r.json" >>"$out/load.jsonl" <<'PY'
import json, sys
name, run, rc, t0, t1, path = sys.argv[1:]
rec = {"who": name, "run": int(run), "exit": int(rc), "process_s": float(t1) - float(t0)}
try:
    j = json.load(open(path))
    rec.update(load_s=j["timings"].get("load_s"), first_token_s=j["timings"]["prefill_s"],
               token=j["tokens"][0])
except (OSError, ValueError, KeyError, IndexError):
    pass
print(json.dumps(rec))
PY
  done
  prepare
  t0=$(date +%s.%N)
  python3 "$here/hf_load.py" --model "$model" --run "$r" >"$out/hf-$r.json" 2>"$out/hf-$r.err"
  t1=$(date +%s.%N)
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j["process_s"]=float(sys.argv[3])-float(sys.argv[2]); print(json.dumps(j))' \
    "$out/hf-$r.json" "$t0" "$t1" >>"$out/load.jsonl" 2>/dev/null || echo "{\"who\": \"transformers\", \"run\": $r, \"exit\": 1}" >>"$out/load.jsonl"
done
python3 - "$out/load.jsonl" "$cold" >"$out/load.md" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("page cache: " + ("dropped before each process" if sys.argv[2] == "1" else "warm") + "\n")
print("| who | runs | load (s) | process, launch to first token (s) | token (starinfer's prompt) |")
print("| --- | ---: | ---: | ---: | --- |")
for who in dict.fromkeys(r["who"] for r in rows):
    rs = [r for r in rows if r["who"] == who and r.get("exit", 0) == 0]
    def med(k):
        v = [r[k] for r in rs if r.get(k) is not None]
        return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" if v else "-"
    # hf_load.py feeds fixed token ids, not starinfer's prompt: its token is not comparable.
    token = "-" if who == "transformers" else sorted(set(r.get("token") for r in rs), key=str)
    print(f"| {who} | {len(rs)} | {med('load_s')} | {med('process_s')} | {token} |")
PY
cat "$out/load.md"
