#!/usr/bin/env bash
# Checks the GPU scripts run as steps (the environment is common.sh's):
#   bash tests/gpu/checks.sh sampled-repeats BUILD SEED
#     `starinfer generate --device cuda` with temperature/top-p gives the same tokens twice for
#     one seed, and other tokens for the next seed. (That the GPU picks what the CPU picks from
#     the same logits and draw is test_gpu_ops' `sample` check; whole runs on the two backends
#     are not compared here: the tiny fixture's random weights give near-uniform probabilities,
#     whose order by probability the bf16 rounding of the logits reshuffles, as measured on an
#     H100: the first sampled token already differed.)
#   bash tests/gpu/checks.sh shared-refused BUILD
#     two ranks on one GPU without --share-gpus: refused, naming the node, the local rank and the flag
#   bash tests/gpu/checks.sh plan-refused BUILD MODEL
#     a plan that cannot fit (logits for a million-token chunk) is refused before allocating,
#     with the bytes needed and free and the flags to change
#   bash tests/gpu/checks.sh nccl-shared-refused BUILD
#     two ranks on one GPU with --merge-transport nccl: refused, naming the flag
#   bash tests/gpu/checks.sh transports BUILD OUT
#     Star Attention over a 32K context on two GPUs (the 8B shape, random weights), decoding 64
#     tokens with the mpi and then the nccl merge (starinfer bench); OUT/transports.jsonl gets
#     both records and OUT/transports.txt the merge time per layer per decoded token, its share of
#     a decoded token's time, and the decode speed of each
set -uo pipefail
mpirun=(mpirun --oversubscribe --bind-to none --mca btl self,vader,tcp --mca btl_tcp_if_include lo
  --mca oob_tcp_if_include lo)
tiny=tests/fixtures/models/tiny-llama3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sampled_repeats() {
  local build=$1 seed=$2
  local args=(generate --device cuda --model "$tiny" --prompt "Once upon a time" --max-new-tokens 24
    --ignore-eos --temperature 0.8 --top-p 0.9 --json)
  "$build/starinfer" "${args[@]}" --seed "$seed" >"$tmp/a.json" || return 1
  "$build/starinfer" "${args[@]}" --seed "$seed" >"$tmp/b.json" || return 1
  "$build/starinfer" "${args[@]}" --seed "$((seed + 1))" >"$tmp/c.json" || return 1
  python3 - "$tmp/a.json" "$tmp/b.json" "$tmp/c.json" <<'PY'
import json, sys
a, b, c = (json.load(open(f))["tokens"] for f in sys.argv[1:])
print("seed    ", a)
print("again   ", b)
print("seed + 1", c)
if len(a) != 24 or a != b:
    sys.exit("FAIL: the same seed gave other tokens")
if a == c:
    sys.exit("FAIL: the next seed gave the very same 24 tokens")
PY
}

shared_refused() {
  local build=$1
  head -c 3000 tests/fixtures/make_fixtures.py >"$tmp/ctx.txt"
  "${mpirun[@]}" -np 2 "$build/starinfer" run --device cuda --model "$tiny" \
    --context "$tmp/ctx.txt" --query "Why?" >"$tmp/out" 2>&1
  local rc=$?
  cat "$tmp/out"
  [[ $rc != 0 ]] && grep -q "2 ranks run on .* but it has 1 GPU(s) (this is local rank" "$tmp/out" &&
    grep -q -- "--share-gpus" "$tmp/out"
}

plan_refused() {
  local build=$1 model=$2
  "${mpirun[@]}" -np 1 "$build/starinfer" run --device cuda --model "$model" \
    --context tests/fixtures/make_fixtures.py --query "Why?" --chunk 1000000 >"$tmp/out" 2>&1
  local rc=$?
  cat "$tmp/out"
  [[ $rc != 0 ]] && grep -q "needs .* MiB of GPU memory for its KV cache and activations, and .* MiB are free" "$tmp/out" &&
    grep -q -- "--chunk" "$tmp/out"
}

nccl_shared_refused() {
  local build=$1
  head -c 3000 tests/fixtures/make_fixtures.py >"$tmp/ctx.txt"
  "${mpirun[@]}" -np 2 "$build/starinfer" run --device cuda --share-gpus --merge-transport nccl \
    --model "$tiny" --context "$tmp/ctx.txt" --query "Why?" >"$tmp/out" 2>&1
  local rc=$?
  cat "$tmp/out"
  [[ $rc != 0 ]] && grep -q -- "--merge-transport nccl: ranks 0 and 1 share GPU" "$tmp/out"
}

transports() {
  local build=$1 out=$2
  rm -f "$out/transports.jsonl"
  for transport in mpi nccl; do
    "${mpirun[@]}" -np 2 "$build/starinfer" bench --device cuda --shape llama-3.1-8b --attn star \
      --lengths 32768 --query-tokens 32 --decode-tokens 64 --warmup 1 --repeat 2 \
      --merge-transport $transport --json "$out/transports.jsonl" || return 1
  done
  python3 - "$out/transports.jsonl" >"$out/transports.txt" <<'PY'
import json, sys
for r in map(json.loads, open(sys.argv[1])):
    merge = r["merge_ms_per_layer"]["mean"]
    token_ms = 1e3 / r["decode_tokens_per_s"]["mean"]
    print(f"{r['merge_transport']:5s} context {r['context']} tokens, {r['ranks']} ranks: merge "
          f"{merge:.4f} ms per layer per decoded token, {32 * merge / token_ms:.1%} of a decoded "
          f"token ({token_ms:.2f} ms); decode {r['decode_tokens_per_s']['mean']:.2f} tokens/s")
PY
  cat "$out/transports.txt"
}

case "${1:-}" in
sampled-repeats) sampled_repeats "$2" "$3" ;;
shared-refused) shared_refused "$2" ;;
plan-refused) plan_refused "$2" "$3" ;;
nccl-shared-refused) nccl_shared_refused "$2" ;;
transports) transports "$2" "$3" ;;
*) echo "usage: $0 sampled-repeats|shared-refused|plan-refused|nccl-shared-refused|transports ..." >&2; exit 2 ;;
esac
