#!/usr/bin/env bash
# Scaling study of Star Attention (Llama-3.1-8B shape, random weights) through `starinfer bench`,
# one rank per GPU on one machine:
#   bash bench/scaling/run.sh --gpus N --out DIR [--bin STARINFER] [--launcher mpirun|srun]
#                             [--repeat K] [--dry-run] [--oversubscribe-check]
#
# Strong scaling (DIR/strong.jsonl): contexts of 128K and 512K tokens on 1, 2, 4, 8 ranks (up to
#   --gpus). Weak scaling (DIR/weak.jsonl): 128K tokens per rank, up to 1M on 8 ranks.
# Star Attention with the paper's settings: block = context / ranks and anchor = block up to 128K,
#   block 32K beyond (anchor = block); plus a smaller anchor of 4K on the same blocks.
#   Global attention on one GPU where it fits (contexts up to 128K), the baseline of the speedups.
# --dry-run prints the commands and runs nothing. --oversubscribe-check runs instead the same
#   logic on 4 and 8 ranks sharing the GPUs (--share-gpus), tiny shape: correctness, not speed.
# As root, mpirun needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 in the environment.
# bench/scaling/plot.py DIR draws the speedup and efficiency from DIR/*.jsonl.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage="usage: bash bench/scaling/run.sh --gpus N --out DIR [--bin STARINFER] [--launcher mpirun|srun] [--repeat K] [--dry-run] [--oversubscribe-check]"
gpus="" out="" bin=${STARINFER_BIN:-$here/../../build/starinfer} launcher=mpirun repeat=2
dry=0 check=0 device=${DEVICE:-cuda}
while (($#)); do
  case $1 in
  --gpus) gpus=${2:-} && shift 2 ;;
  --out) out=${2:-} && shift 2 ;;
  --bin) bin=${2:-} && shift 2 ;;
  --launcher) launcher=${2:-} && shift 2 ;;
  --repeat) repeat=${2:-} && shift 2 ;;
  --dry-run) dry=1 && shift ;;
  --oversubscribe-check) check=1 && shift ;;
  -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
  *) echo "run.sh: unknown option '$1'; $usage" >&2 && exit 2 ;;
  esac
done
if ! [[ $gpus =~ ^[1-9][0-9]*$ ]]; then
  echo "run.sh: --gpus needs the number of GPUs to use (1 or more), got '$gpus'; $usage" >&2
  exit 2
fi
if [[ -z $out ]]; then
  echo "run.sh: --out needs a folder for the JSON lines; $usage" >&2
  exit 2
fi
if ! [[ $repeat =~ ^[1-9][0-9]*$ ]]; then
  echo "run.sh: --repeat needs a count of 1 or more, got '$repeat'" >&2
  exit 2
fi
case $launcher in
mpirun) launch=(mpirun --bind-to none -np) ;;
srun) launch=(srun --mpi=pmix --kill-on-bad-exit=1 -n) ;;
*) echo "run.sh: --launcher is mpirun or srun, got '$launcher'" >&2 && exit 2 ;;
esac
if ((!dry)) && [[ ! -x $bin ]]; then
  echo "run.sh: no starinfer at '$bin': build it (cmake --build build) or give --bin PATH" >&2
  exit 2
fi
((dry)) || mkdir -p "$out"

K=1024
failed=0
# run RANKS FILE ARGS...: one starinfer bench job, or its command line with --dry-run.
run() {
  local ranks=$1 file=$2
  shift 2
  local cmd=("${launch[@]}" "$ranks" "$bin" bench --device "$device" --query-tokens 32
    --decode-tokens 32 --warmup 1 --repeat "$repeat" --json "$out/$file" "$@")
  if ((dry)); then
    echo "${cmd[*]}"
    return 0
  fi
  echo "run.sh: ${cmd[*]}" >&2
  local rc=0
  "${cmd[@]}" || rc=$?
  if ((rc)); then
    failed=$((failed + 1))
    echo "run.sh: that run failed (exit $rc); going on" >&2
  fi
}
# star RANKS CONTEXT FILE [ARGS...]: the paper's block and anchor, and a 4K anchor.
star() {
  local ranks=$1 n=$2 file=$3
  shift 3
  local block=$((n / ranks))
  if ((n > 128 * K)); then block=$((32 * K)); fi
  local anchors=$block
  if ((block > 4 * K)); then anchors=$block,$((4 * K)); fi
  run "$ranks" "$file" --attn star --lengths "$n" --block-size "$block" --anchor-size "$anchors" "$@"
}

if ((check)); then
  # Several ranks per GPU on a tiny model: the logic at 4 and 8 ranks, whatever the GPU count.
  if [[ $launcher == mpirun ]]; then launch=(mpirun --bind-to none --oversubscribe -np); fi
  for ranks in 4 8; do
    star "$ranks" $((8 * K)) oversubscribe.jsonl --shape tiny --share-gpus
  done
  if ((!dry)); then
    python3 - "$out/oversubscribe.jsonl" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bad = [r for r in recs if "error" in r or r.get("active_ranks") != r.get("ranks")]
for r in recs:
    print(f"ranks {r.get('ranks')}: {r.get('error') or 'ok'}")
sys.exit(f"run.sh: {len(bad)} of {len(recs)} oversubscribed runs failed" if bad or not recs else 0)
EOF
  fi
  exit $failed
fi

shape=(--shape llama-3.1-8b)
for n in $((128 * K)) $((512 * K)); do
  if ((n <= 128 * K)); then run 1 strong.jsonl "${shape[@]}" --attn global --lengths "$n"; fi
  for ranks in 1 2 4 8; do
    if ((ranks <= gpus)); then star "$ranks" "$n" strong.jsonl "${shape[@]}"; fi
  done
done
for ranks in 1 2 4 8; do
  if ((ranks <= gpus)); then star "$ranks" $((ranks * 128 * K)) weak.jsonl "${shape[@]}"; fi
done
((dry)) || echo "run.sh: $failed failed runs; JSON lines in $out; plot: python3 bench/scaling/plot.py $out" >&2
exit $((failed > 0))
