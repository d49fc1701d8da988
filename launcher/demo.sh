#!/usr/bin/env bash
# The main job on the embedded default: sets up, generates a fresh long haystack with one fact
# hidden in it (a seed never used in training), and asks the small model trained here
# (bench/accuracy/model) about it with Star Attention across 4 MPI ranks. Prints the question,
# the answer, the expected answer and the phase timings per rank.
#   bash launcher/demo.sh [--length 8192] [--ranks 4] [--seed S] [--block-size N] [--anchor-size N]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/launcher/setup.sh"
export STARINFER_BIN=${STARINFER_BIN:-${STARINFER_BUILD_DIR:-$repo/build}/starinfer}
[[ -s $repo/bench/accuracy/data/prose.txt ]] || python3 "$repo/bench/accuracy/prepare_data.py"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
exec python3 "$repo/bench/accuracy/demo.py" "$@"
