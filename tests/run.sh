#!/usr/bin/env bash
# Sets up (Debian packages, build) and runs every test with ctest, then the unit tests again
# under AddressSanitizer and UndefinedBehaviorSanitizer. Exits non-zero when any test fails.
#   bash tests/run.sh            everything
#   bash tests/run.sh -L unit    pass ctest options through (labels: unit, mpi, cli, launch)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/launcher/setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
jobs=$(nproc)
ctest --test-dir "$repo/build" --output-on-failure -j"$jobs" "$@"
if (($# == 0)); then
  STARINFER_BUILD_DIR="$repo/build-asan" bash "$repo/launcher/setup.sh" -DSTARINFER_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=Debug -DSTARINFER_CUDA=OFF
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$repo/build-asan" --output-on-failure \
    -j"$jobs" -L unit
fi
