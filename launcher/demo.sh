#!/usr/bin/env bash
# The main job on the bundled default: sets up, writes a long generated context with a fact
# hidden in it, and answers a question about it with Star Attention across 4 MPI ranks.
#   bash launcher/demo.sh [extra starinfer run flags, e.g. --json]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/launcher/setup.sh"
export STARINFER_BIN=${STARINFER_BIN:-${STARINFER_BUILD_DIR:-$repo/build}/starinfer}
model=${STARINFER_MODEL:-$repo/tests/fixtures/models/tiny-llama3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work/context.txt" <<'PY'
import random, sys
rng = random.Random(2411)
syll = ["ka", "lo", "mi", "ren", "tas", "vo", "quil", "ne", "sar", "dum", "pe", "xi"]
words = lambda n: " ".join("".join(rng.choice(syll) for _ in range(rng.randint(1, 3)))
                          for _ in range(n))
lines = [words(20) + "." for _ in range(40)]
lines.insert(23, "The special magic number is 7481.")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
query="What is the special magic number?"
echo "question: $query" >&2
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
"$repo/launcher/starinfer-mpirun" --np 4 --network loopback --oversubscribe -- \
  run --model "$model" --context "$work/context.txt" --query "$query" --max-new-tokens 16 "$@"
