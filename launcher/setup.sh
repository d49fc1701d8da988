#!/usr/bin/env bash
# Installs what starinfer needs on Debian/Ubuntu (when run as root, or with sudo) and builds it
# into build/. Safe to run again: it only installs what is missing and rebuilds what changed.
#   bash launcher/setup.sh [extra cmake options, e.g. -DSTARINFER_SANITIZE=ON]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STARINFER_BUILD_DIR:-$repo/build}

packages=(build-essential cmake pkg-config python3
  libopenmpi-dev openmpi-bin libucx-dev ucx-utils libhwloc-dev hwloc
  libcjson-dev libpcre2-dev libopenblas-dev libcmocka-dev
  slurmctld slurmd slurm-client munge libpmix-dev iproute2 wamerican fortunes python3-matplotlib)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $EUID -ne 0 ]] && sudo=sudo
  echo "setup: installing ${missing[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

log=$(mktemp)
if ! { cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" &&
  cmake --build "$build" -j"$(nproc)"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "setup: the build failed (above)" >&2
  exit 1
fi
rm -f "$log"
echo "setup: built $build/starinfer" >&2
