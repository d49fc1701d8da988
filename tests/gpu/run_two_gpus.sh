#!/usr/bin/env bash
# On one host with two GPUs (run from the repository root there):
#   bash tests/gpu/run_two_gpus.sh BUILD_DIR OUT_DIR
# One rank per GPU: Star Attention's invariants across the two GPUs, then a 128K-token context
# through an 8B-shaped model (block = anchor = 16K: four blocks per rank), with timings.
set -uo pipefail
build=$1 out=$2
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
nvidia-smi -L | tee -a "$summary"
step star_np2_two_gpus 120 "${mpirun[@]}" -np 2 "$build/tests/mpi/test_star"
STARINFER_TEST_MERGE_TRANSPORT=nccl step star_np2_two_gpus_nccl 120 "${mpirun[@]}" -np 2 \
  -x STARINFER_TEST_MERGE_TRANSPORT "$build/tests/mpi/test_star"
step make_8b 240 python3 tests/gpu/make_8b_reference.py /tmp/g8
STARINFER_FIXTURES=/tmp/g8 STARINFER_TEST_MODELS=llama8b step gpu_model_8b 240 "$build/tests/test_model"
python3 - /tmp/ctx128k.txt <<'PY'
import random, sys
rng = random.Random(128)
syll = ["ka", "lo", "mi", "ren", "tas", "vo", "quil", "ne", "sar", "dum", "pe", "xi"]
words = [" ".join("".join(rng.choice(syll) for _ in range(rng.randint(1, 3))) for _ in range(18))
         for _ in range(2100)]
words.insert(1050, "The special magic number is 7481.")
open(sys.argv[1], "w").write(".\n".join(words))
PY
# Decoding at 32K context: the phase-2 merge through MPI (pinned host staging) vs NCCL.
step transports_32k 300 bash tests/gpu/checks.sh transports "$build" "$out"
for attn in star; do
  step run128k_$attn 420 "${mpirun[@]}" -np 2 "$build/starinfer" run --device cuda \
    --model /tmp/g8/models/llama8b --context /tmp/ctx128k.txt --query "What is the special magic number?" \
    --block-size 16384 --anchor-size 16384 --max-new-tokens 16 --ignore-eos --chat-template none --json
  cp "$logs/run128k_$attn.log" "$out/run128k_$attn.log"
done
grep -h "bf16 vs fp32\|max relative\|vs reference\|union\|time to first\|rank |\|   [0-9] |\|memory on" "$logs"/*.log | head -60 >"$out/details.txt"
