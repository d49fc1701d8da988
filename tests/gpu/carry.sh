#!/usr/bin/env bash
# Builds what the GPU machine runs and gathers it in one folder to carry there:
#   bash tests/gpu/carry.sh DEST
# The build (in build-gpu/) is for Hopper only and uses netlib BLAS, a small library the GPU
# image lacks; DEST gets the programs and, in DEST/lib, the shared libraries the image lacks.
# libnccl.so.2 (linked for --merge-transport nccl) is not carried: common.sh takes the GPU
# machine's own, from PyTorch's nvidia-nccl wheel.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest=$1
build=$repo/build-gpu
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSTARINFER_BLAS=blas-netlib \
  -DSTARINFER_CUDA_ARCHS=90a-real >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
mkdir -p "$dest/lib" "$dest/tests/mpi" "$dest/tests/gpu" "$dest/bench"
cp "$build/starinfer" "$dest/"
cp "$build/tests/test_model" "$dest/tests/"
cp "$build/tests/mpi/test_star" "$dest/tests/mpi/"
cp "$build/tests/gpu/test_gpu_ops" "$dest/tests/gpu/"
cp "$build"/bench/bench_* "$dest/bench/"
libs=(libcjson.so.1 libpcre2-8.so.0 libgfortran.so.5 libquadmath.so.0 libcmocka.so.0
  libhwloc.so.15 libgomp.so.1)
for l in "${libs[@]}"; do
  cp -L "/lib/x86_64-linux-gnu/$l" "$dest/lib/"
done
cp -L /usr/lib/x86_64-linux-gnu/blas/libblas.so.3 "$dest/lib/"
du -sh "$dest" >&2
