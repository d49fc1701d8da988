#!/usr/bin/env bash
# The starinfer command as users run it: good runs, bad input and faults, one case per ctest.
#   bash tests/cli/test_cli.sh CASE      (STARINFER_BIN and STARINFER_FIXTURES from ctest)
# Each case checks the exit code and that the message names the flag, file or rank at fault.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${STARINFER_BIN:-$repo/build/starinfer}
fixtures=${STARINFER_FIXTURES:-$repo/tests/fixtures}
model=$fixtures/models/tiny-llama3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
mpirun=(mpirun --oversubscribe --mca btl self,vader,tcp --mca btl_tcp_if_include lo
  --mca oob_tcp_if_include lo)

fail() {
  echo "FAIL: $*"
  echo "--- stdout"; cat "$tmp/out" 2>/dev/null
  echo "--- stderr"; cat "$tmp/err" 2>/dev/null
  exit 1
}
# expect CODE CMD...: runs CMD, checks its exit code.
expect() {
  local want=$1; shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  [[ $got == "$want" ]] || fail "exit code $got, expected $want: $*"
}
says() { grep -qF -- "$1" "$tmp/err" || fail "stderr does not mention '$1'"; }
json() { python3 -c "import json,sys; d=json.load(open('$tmp/out')); sys.exit(0 if ($1) else 1)" ||
  fail "JSON check failed: $1"; }

# A context of generated prose, N words.
make_context() {
  python3 - "$1" >"$tmp/context.txt" <<'PY'
import random, sys
rng = random.Random(7)
syll = ["ka", "lo", "mi", "ren", "tas", "vo", "quil", "ne", "sar", "dum"]
print(" ".join("".join(rng.choice(syll) for _ in range(rng.randint(1, 3)))
               for _ in range(int(sys.argv[1]))))
PY
}

model_copy() {
  mkdir -p "$tmp/model" && cp "$model"/* "$tmp/model/"
}

case "$1" in
generate_json)
  expect 0 "$bin" generate --model "$model" --prompt "Hello" --max-new-tokens 5 --json
  json "d['generated_tokens'] >= 1 and d['finish'] in ('length', 'eos') and d['prompt_tokens'] > 0 and \
0 < d['timings']['load_s'] < 60"
  says "weights: "
  ;;
generate_prompt_too_long)
  expect 1 "$bin" generate --model "$model" --prompt "Hello" --max-new-tokens 5000
  says "max_position_embeddings"; says "--max-new-tokens"
  ;;
generate_missing_model)
  expect 1 "$bin" generate --model "$tmp/nowhere" --prompt "Hello"
  says "$tmp/nowhere"
  ;;
generate_model_not_a_directory)
  # --model names no directory: said so, rather than "config.json not found".
  expect 1 "$bin" generate --model "$tmp/nowhere" --prompt "Hello"
  says "--model $tmp/nowhere: no such directory"
  echo "not a model" >"$tmp/file.txt"
  expect 1 "$bin" generate --model "$tmp/file.txt" --prompt "Hello"
  says "--model $tmp/file.txt is a file, not a model directory (give the directory that holds config.json)"
  expect 2 "$bin" generate --model "" --prompt "Hello"
  says "--model needs a directory"
  ;;
generate_unsupported_architecture)
  model_copy
  sed -i 's/LlamaForCausalLM/GPT2LMHeadModel/' "$tmp/model/config.json"
  expect 1 "$bin" generate --model "$tmp/model" --prompt "Hello"
  says "config.json"; says "GPT2LMHeadModel"
  ;;
generate_malformed_config)
  model_copy
  echo '{"architectures": ["LlamaForCausalLM"], ' >"$tmp/model/config.json"
  expect 1 "$bin" generate --model "$tmp/model" --prompt "Hello"
  says "$tmp/model/config.json"
  ;;
generate_truncated_weights)
  model_copy
  truncate -s 200000 "$tmp/model/model.safetensors"
  expect 1 "$bin" generate --model "$tmp/model" --prompt "Hello"
  says "model.safetensors"
  ;;
generate_model_file_is_directory)
  # A directory where the model folder should hold a file: named, not taken for a file of
  # 2^63 bytes (it was "out of host memory").
  model_copy
  for f in config.json generation_config.json tokenizer.json tokenizer_config.json \
    model.safetensors; do
    mv "$tmp/model/$f" "$tmp/$f"
    mkdir "$tmp/model/$f"
    expect 1 "$bin" generate --model "$tmp/model" --prompt "Hello"
    says "$tmp/model/$f is a directory"
    ! grep -q "out of host memory" "$tmp/err" || fail "$f: a directory read as a file"
    rmdir "$tmp/model/$f"
    mv "$tmp/$f" "$tmp/model/$f"
  done
  mkdir -p "$tmp/sharded" && cp "$fixtures/models/tiny-sharded"/* "$tmp/sharded/"
  for f in model.safetensors.index.json model-00002-of-00007.safetensors; do
    mv "$tmp/sharded/$f" "$tmp/$f"
    mkdir "$tmp/sharded/$f"
    expect 1 "$bin" generate --model "$tmp/sharded" --prompt "Hello"
    says "$tmp/sharded/$f is a directory"
    rmdir "$tmp/sharded/$f"
    mv "$tmp/$f" "$tmp/sharded/$f"
  done
  ;;
generate_unknown_argument)
  # A last word that is no flag is unknown, not a flag missing its value.
  expect 2 "$bin" generate --model "$model" --prompt "Hello" --bogus
  says "unknown argument '--bogus' (see --help)"
  expect 2 "$bin" generate --model "$model" --prompt "Hello" extra
  says "unknown argument 'extra' (see --help)"
  expect 2 "$bin" generate --model "$model" --prompt
  says "--prompt needs a value"
  ;;
generate_no_gpu)
  # Asked for CUDA where there is none: the error names the node and what to do.
  if [[ -e /dev/nvidia0 ]]; then
    echo "ok: a GPU is present, nothing to check"
    exit 0
  fi
  expect 1 "$bin" generate --model "$model" --prompt "Hello" --device cuda
  says "$(hostname)"; says "--device cpu"
  ;;
generate_under_mpirun)
  # generate is one process: under a launcher that started several, every one refuses (each
  # would print its own answer), rank 0 says why once, and the job ends; one process still runs.
  expect 2 timeout 60 "${mpirun[@]}" -np 2 "$bin" generate --model "$model" --prompt "Hello" \
    --max-new-tokens 3
  says "generate runs on one process; use \`starinfer run\` across ranks"
  [[ $(grep -c "generate runs on one process" "$tmp/err") == 1 ]] || fail "not said once"
  [[ ! -s $tmp/out ]] || fail "an answer was printed"
  expect 0 timeout 60 "${mpirun[@]}" -np 1 "$bin" generate --model "$model" --prompt "Hello" \
    --max-new-tokens 3 --json
  json "d['generated_tokens'] >= 1"
  ;;
generate_bad_flag)
  expect 2 "$bin" generate --model "$model" --prompt "Hello" --max-new-tokens many
  says "--max-new-tokens"
  ;;
run_np4_json)
  make_context 400
  expect 0 "${mpirun[@]}" -np 4 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Which word comes first?" --max-new-tokens 6 --json
  json "d['ranks'] == 4 and d['active_ranks'] == 4 and len(d['tokens']) >= 1 and d['backend'] == 'cpu' and \
len(d['memory_mib']) == 4 and sum(d['rank_context_tokens']) == d['context_tokens'] and \
len(d['peak_memory_mib']) == 4 and all(0 < p <= m for p, m in zip(d['peak_memory_mib'], d['memory_mib'])) and \
0 < d['timings']['load_s'] < 60"
  says "time to first token"
  [[ $(grep -c "weights: .* GB onto cpu in" "$tmp/err") == 1 ]] || fail "not one line on the weights' loading"
  ! grep -q "local ranks share cores" "$tmp/err" || fail "OMP_NUM_THREADS=1 was set, yet the threads were shared out"
  ;;
run_threads_shared)
  # Four unbound ranks on this machine's cores, OMP_NUM_THREADS unset: each takes its share of
  # the cores instead of one thread per core, and says so.
  make_context 200
  cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
  want=$((cores / 4 > 1 ? cores / 4 : 1))
  (
    unset OMP_NUM_THREADS
    expect 0 "${mpirun[@]}" -np 4 --bind-to none "$bin" run --model "$model" \
      --context "$tmp/context.txt" --query "Which word comes first?" --max-new-tokens 2
  ) || exit 1
  [[ $(grep -c "\] $want thread(s): 4 local ranks share cores" "$tmp/err") == 4 ]] ||
    fail "not every rank took $want thread(s) of the $cores cores: $(grep thread "$tmp/err")"
  ;;
run_threads_shared_mixed)
  # OMP_NUM_THREADS set on one rank only (an MPMD launch): that rank keeps its count, the three
  # others still share the cores among themselves, and nobody waits on a count left out.
  make_context 200
  cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
  want=$((cores / 3 > 1 ? cores / 3 : 1))
  args=(run --model "$model" --context "$tmp/context.txt" --query "Which word comes first?"
    --max-new-tokens 2 --json)
  (
    unset OMP_NUM_THREADS
    expect 0 timeout 120 "${mpirun[@]}" --bind-to none -np 1 env OMP_NUM_THREADS=1 "$bin" "${args[@]}" \
      : -np 3 "$bin" "${args[@]}"
  ) || exit 1
  json "d['ranks'] == 4 and len(d['tokens']) >= 1"
  [[ $(grep -c "\] $want thread(s): 3 local ranks share cores" "$tmp/err") == 3 ]] ||
    fail "not three ranks sharing the $cores cores at $want thread(s): $(grep thread "$tmp/err")"
  ;;
run_ranks_other_arguments)
  # An MPMD launch whose second part has a flag the first lacks (wrong, on rank 1 only): every
  # rank stops at once with rank 0 naming rank 1, instead of rank 0 waiting in phase 1.
  make_context 200
  args=(run --model "$model" --context "$tmp/context.txt" --query "Why?" --max-new-tokens 2)
  expect 2 timeout 60 "${mpirun[@]}" -np 1 "$bin" "${args[@]}" : -np 1 "$bin" "${args[@]}" --bogus 1
  says "rank 1 was given other arguments than rank 0"
  [[ $(grep -c "rank 1 was given" "$tmp/err") == 1 ]] || fail "not one message"
  ;;
run_ranks_other_model)
  # The same --model path on both ranks, but another model behind it on rank 1 (each rank runs in
  # its own directory): refused before the weights load, naming the rank and the files at fault.
  make_context 200
  mkdir -p "$tmp/a" "$tmp/b"
  ln -s "$model" "$tmp/a/m"
  ln -s "$fixtures/models/tiny-tied" "$tmp/b/m"
  args=(run --model m --context "$tmp/context.txt" --query "Why?" --max-new-tokens 2)
  expect 1 timeout 60 "${mpirun[@]}" -np 1 -wdir "$tmp/a" "$bin" "${args[@]}" \
    : -np 1 -wdir "$tmp/b" "$bin" "${args[@]}"
  says "[rank 1] error: the model in 'm' on"
  says "is not rank 0's"
  ! grep -q "weights: " "$tmp/err" || fail "the weights were loaded"
  ;;
run_weights_not_finite)
  # One NaN in a weight (the final norm's first value): every logit is NaN. No token is made up
  # (argmax would give id 0 over and over); run and generate both fail and say why.
  make_context 200
  model_copy
  python3 - "$tmp/model/model.safetensors" <<'PY'
import json, struct, sys
with open(sys.argv[1], "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    t = json.loads(f.read(n))["model.norm.weight"]
    assert t["dtype"] == "BF16"
    f.seek(8 + n + t["data_offsets"][0])
    f.write(struct.pack("<H", 0x7FC0))
PY
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$tmp/model" --context "$tmp/context.txt" \
    --query "Why?" --max-new-tokens 4 --json
  says "logits are not finite (NaN or infinite) after 0 generated token(s)"
  [[ ! -s "$tmp/out" ]] || fail "an answer was printed"
  expect 1 "$bin" generate --model "$tmp/model" --prompt "Hello" --max-new-tokens 4 --json
  says "logits are not finite"
  [[ ! -s "$tmp/out" ]] || fail "an answer was printed"
  ;;
generate_unused_tensors)
  # config.json with one layer fewer than the checkpoint, or tied embeddings beside a stored
  # lm_head: the tensors left over are ignored, as Transformers does, and named in a warning.
  model_copy
  python3 - "$tmp/model/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["num_hidden_layers"] -= 1
json.dump(c, open(sys.argv[1], "w"))
PY
  expect 0 "$bin" generate --model "$tmp/model" --prompt "Hello" --max-new-tokens 2
  says "9 tensor(s) of the safetensors files are not used by the model config.json describes (model.layers.2."
  python3 - "$tmp/model/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["num_hidden_layers"] += 1; c["tie_word_embeddings"] = True
json.dump(c, open(sys.argv[1], "w"))
PY
  expect 0 "${mpirun[@]}" -np 2 "$bin" run --model "$tmp/model" --context "$tmp/model/config.json" \
    --query "Why?" --max-new-tokens 2
  says "1 tensor(s) of the safetensors files are not used by the model config.json describes (lm_head.weight)"
  [[ $(grep -c "not used by the model" "$tmp/err") == 1 ]] || fail "not one warning"
  expect 0 "$bin" generate --model "$model" --prompt "Hello" --max-new-tokens 2
  ! grep -q "not used by the model" "$tmp/err" || fail "a warning for the unchanged model"
  ;;
run_context_from_stdin)
  make_context 100
  "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context - --query "Why?" \
    --max-new-tokens 3 --json <"$tmp/context.txt" >"$tmp/out" 2>"$tmp/err" ||
    fail "run with --context - failed"
  json "d['context_tokens'] > 100"
  ;;
run_global_matches_star_one_block)
  # One block on one rank is global attention: the same greedy tokens.
  make_context 200
  expect 0 "${mpirun[@]}" -np 1 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --max-new-tokens 8 --json --attn global
  cp "$tmp/out" "$tmp/global.json"
  expect 0 "${mpirun[@]}" -np 1 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --max-new-tokens 8 --json
  json "d['tokens'] == json.load(open('$tmp/global.json'))['tokens']"
  ;;
run_sampled_repeats)
  # The same seed picks the same tokens (the uniform draws are made on rank 0's host).
  make_context 200
  for i in 1 2; do
    expect 0 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
      --query "Why?" --max-new-tokens 12 --ignore-eos --temperature 0.9 --top-p 0.8 --seed 11 --json
    cp "$tmp/out" "$tmp/sampled$i.json"
  done
  json "len(d['tokens']) == 12 and d['tokens'] == json.load(open('$tmp/sampled1.json'))['tokens']"
  ;;
run_merge_transport_bad)
  make_context 50
  expect 2 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --merge-transport shm
  says "--merge-transport"; says "shm"
  ;;
run_merge_transport_nccl_on_cpu)
  # NCCL merges device buffers: refused on the CPU backend (or in a build without NCCL), on
  # every rank alike, idle ones included (three ranks, two blocks).
  make_context 200
  expect 1 "${mpirun[@]}" -np 3 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --device cpu --merge-transport nccl --block-size 600
  says "--merge-transport nccl"
  ;;
run_dtype_bad)
  make_context 50
  expect 2 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --dtype fp16
  says "--dtype"; says "fp16"
  ;;
run_dtype_bf16_on_cpu)
  # The CPU computes in fp32 only: bf16 is refused on every rank, with what to do instead; fp32
  # is what it does anyway, and is taken.
  make_context 50
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --device cpu --dtype bf16
  says "--dtype bf16"; says "fp32 only"
  expect 0 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --device cpu --dtype fp32 --max-new-tokens 2
  ;;
run_block_size_zero)
  make_context 50
  expect 2 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --block-size 0
  says "--block-size"
  ;;
run_block_size_negative)
  make_context 50
  expect 2 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --block-size -64
  says "--block-size"
  ;;
run_block_size_not_a_number)
  make_context 50
  expect 2 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --block-size 12k
  says "--block-size"; says "12k"
  ;;
run_anchor_larger_than_block)
  make_context 50
  expect 2 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --block-size 32 --anchor-size 64
  says "--anchor-size"; says "--block-size"
  ;;
run_empty_query)
  make_context 50
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query ""
  says "query is empty"
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query $' \n\t '
  says "query is empty (whitespace only)"
  ;;
run_context_too_long)
  make_context 3000
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?"
  says "max_position_embeddings"
  ;;
run_unreadable_context)
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/missing.txt" \
    --query "Why?"
  says "--context"; says "$tmp/missing.txt"
  ;;
run_model_not_a_directory)
  # The same on every rank of run (checked where the model loads), and for bench.
  make_context 50
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$tmp/nowhere" --context "$tmp/context.txt" \
    --query "Why?"
  says "--model $tmp/nowhere: no such directory"
  expect 1 "${mpirun[@]}" -np 2 "$bin" bench --model "$tmp/context.txt" --lengths 64
  says "--model $tmp/context.txt is a file, not a model directory"
  expect 2 "${mpirun[@]}" -np 2 "$bin" run --model "" --context "$tmp/context.txt" --query "Why?"
  says "--model needs a directory"
  ;;
run_context_nul)
  # A NUL byte would end the text there: refused with its offset, from a file, standard input
  # or --query-file, instead of answering over the first half.
  make_context 600
  python3 - "$tmp/context.txt" "$tmp/nul.txt" <<'PY'
import sys
text = bytearray(open(sys.argv[1], "rb").read()[:3000])
text[1500] = 0
open(sys.argv[2], "wb").write(text)
PY
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/nul.txt" --query "Why?"
  says "--context $tmp/nul.txt: byte 1500 is a NUL (a binary file?)"
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context - --query "Why?" <"$tmp/nul.txt"
  says "--context -: byte 1500 is a NUL"
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query-file "$tmp/nul.txt"
  says "--query-file $tmp/nul.txt: byte 1500 is a NUL"
  [[ ! -s $tmp/out ]] || fail "an answer was printed"
  ;;
run_context_empty)
  # Nothing to read is no document: an empty file, empty standard input, whitespace only.
  : >"$tmp/empty.txt"
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/empty.txt" --query "Why?"
  says "--context $tmp/empty.txt is empty"
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context - --query "Why?" </dev/null
  says "--context - is empty"
  printf ' \n\t\n' >"$tmp/blank.txt"
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/blank.txt" --query "Why?"
  says "--context $tmp/blank.txt is empty (whitespace only)"
  [[ ! -s $tmp/out ]] || fail "an answer was printed"
  ;;
run_context_directory)
  expect 1 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp" --query "Why?"
  says "--context $tmp is a directory"
  ;;
run_unknown_argument)
  # The same for run and eval (star_args_parse): eval has no --json.
  make_context 50
  expect 2 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --bogus
  says "unknown argument '--bogus' (see --help)"
  expect 2 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/in.jsonl" \
    --out "$tmp/out.jsonl" --json
  says "unknown argument '--json' (see --help)"
  expect 2 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --query "Why?" --context
  says "--context needs a value"
  ;;
run_ignored_flags_warned)
  # Flags that others make moot are run with, but said to be ignored, once (by rank 0).
  make_context 100
  expect 0 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --max-new-tokens 2 --attn global --block-size 10 --top-p 0.5
  says "warning: --block-size ignored: --attn global"
  says "warning: --top-p ignored: sampling needs --temperature above 0"
  [[ $(grep -c "ignored" "$tmp/err") == 2 ]] || fail "not warned once each"
  expect 0 "${mpirun[@]}" -np 2 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --max-new-tokens 2 --block-size 64 --temperature 0.7 --top-p 0.5 --seed 3
  ! grep -q "ignored" "$tmp/err" || fail "warned of flags that were used"
  expect 0 "$bin" generate --model "$model" --prompt "Hello" --max-new-tokens 2 --seed 3
  says "warning: --seed ignored"
  expect 0 "${mpirun[@]}" -np 1 "$bin" bench --shape tiny --lengths 64 --attn global \
    --block-size 32 --anchor-size 16 --repeat 1 --warmup 0 --decode-tokens 2
  says "warning: --block-size and --anchor-size ignored: --attn global"
  ;;
run_more_ranks_than_blocks)
  make_context 100
  expect 0 "${mpirun[@]}" -np 4 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --block-size 1000 --max-new-tokens 3 --json
  says "ranks 1..3 have no block"
  json "d['active_ranks'] == 1 and d['ranks'] == 4"
  ;;
run_rank_killed)
  # Rank 2 is killed while the ranks decode together: the job must end within 30 s, not hang,
  # and say which rank died.
  make_context 150
  "${mpirun[@]}" -np 4 "$bin" run --model "$model" --context "$tmp/context.txt" \
    --query "Why?" --max-new-tokens 3000 --ignore-eos >"$tmp/out" 2>"$tmp/err" &
  job=$!
  for _ in $(seq 300); do [[ -s $tmp/out ]] && break; sleep 0.1; done
  [[ -s $tmp/out ]] || fail "the run produced no answer to interrupt"
  victim=""
  for pid in $(pgrep -f "$bin run"); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=2"; then
      victim=$pid
    fi
  done
  [[ -n $victim ]] || fail "could not find rank 2's process"
  start=$(date +%s)
  kill -9 "$victim"
  for _ in $(seq 300); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$job" 2>/dev/null; then
    kill -9 "$job"
    fail "the job still runs 30 s after rank 2 was killed"
  fi
  wait "$job"
  code=$?
  echo "job ended $(($(date +%s) - start)) s after rank 2 was killed, exit code $code"
  [[ $code != 0 ]] || fail "the job exited 0 after losing a rank"
  says "rank 2"
  ;;
eval_malformed_line)
  python3 - >"$tmp/requests.jsonl" <<'PY'
import json
print(json.dumps({"context": "kalo miren tas vo " * 20, "query": "First?", "max_new_tokens": 3}))
print('{"context": "broken", "query": ')
print(json.dumps({"context": "quil ne sar " * 30, "query": "Second?", "max_new_tokens": 2}))
PY
  expect 1 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/requests.jsonl" \
    --out "$tmp/results.jsonl"
  says "requests.jsonl:2:"
  cp "$tmp/results.jsonl" "$tmp/out"
  python3 - "$tmp/results.jsonl" <<'PY' || fail "results do not hold lines 1 and 3 answered, 2 failed"
import json, sys
recs = {r["line"]: r for r in map(json.loads, open(sys.argv[1]))}
assert sorted(recs) == [1, 2, 3], recs.keys()
assert "error" in recs[2] and "answer" in recs[1] and "answer" in recs[3]
assert len(recs[3]["tokens"]) <= 2
PY
  ;;
eval_resume)
  python3 - >"$tmp/requests.jsonl" <<'PY'
import json
for i in range(3):
    print(json.dumps({"context": "kalo miren tas vo " * (10 + 5 * i), "query": f"Q{i}?",
                      "max_new_tokens": 3}))
PY
  expect 0 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/requests.jsonl" \
    --out "$tmp/full.jsonl"
  # An interrupted run: the first record whole, the second cut short.
  head -n 1 "$tmp/full.jsonl" >"$tmp/results.jsonl"
  sed -n 2p "$tmp/full.jsonl" | head -c 40 >>"$tmp/results.jsonl"
  expect 0 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/requests.jsonl" \
    --out "$tmp/results.jsonl"
  python3 - "$tmp/full.jsonl" "$tmp/results.jsonl" <<'PY' || fail "the resumed results differ"
import json, sys
full = [json.loads(l) for l in open(sys.argv[1])]
resumed = [json.loads(l) for l in open(sys.argv[2])]
assert [r["line"] for r in resumed] == [1, 2, 3], [r["line"] for r in resumed]
assert [r["tokens"] for r in resumed] == [r["tokens"] for r in full]
PY
  ;;
eval_unreadable_requests)
  expect 1 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/none.jsonl" \
    --out "$tmp/results.jsonl"
  says "--requests"; says "$tmp/none.jsonl"
  ;;
eval_out_is_requests)
  # --out the same file as --requests (itself, or through a link): refused before anything is
  # appended, since each record would be read back as one more request and the file would grow
  # without end.
  echo '{"context": "kalo miren", "query": "Why?"}' >"$tmp/requests.jsonl"
  cp "$tmp/requests.jsonl" "$tmp/before.jsonl"
  ln -s requests.jsonl "$tmp/link.jsonl"
  for out in "$tmp/requests.jsonl" "$tmp/link.jsonl"; do
    expect 2 timeout 30 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" \
      --requests "$tmp/requests.jsonl" --out "$out" --max-new-tokens 2
    says "--out '$out' is the same file as --requests '$tmp/requests.jsonl'"
    cmp -s "$tmp/requests.jsonl" "$tmp/before.jsonl" || fail "--requests was written to"
  done
  ;;
eval_requests_directory)
  # A directory opens like a file and reads as no requests ("0 answered", exit 0): refused, with
  # the exit code of a missing file.
  mkdir "$tmp/requests"
  expect 1 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/requests" \
    --out "$tmp/results.jsonl"
  says "--requests $tmp/requests is a directory"
  # A named pipe is refused too, before it is opened (with no writer, opening it never ends): its
  # lines are counted first (to check --out's records against them), and it could not be read
  # again.
  mkfifo "$tmp/fifo"
  expect 1 timeout 60 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/fifo" \
    --out "$tmp/results.jsonl"
  says "--requests $tmp/fifo is not a regular file"
  ;;
eval_trailing_garbage)
  # Text after a request's object makes its line bad, as does text hidden behind a NUL byte;
  # trailing whitespace (CRLF too) does not.
  printf '%s\n' '{"context": "kalo miren tas", "query": "Why?"} trailing' \
    '{"context": "kalo miren tas", "query": "Why?"}  '$'\r' >"$tmp/requests.jsonl"
  printf '{"context": "kalo miren tas", "query": "Why?"}\0 hidden\n' >>"$tmp/requests.jsonl"
  expect 1 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/requests.jsonl" \
    --out "$tmp/results.jsonl" --max-new-tokens 2
  says "requests.jsonl:1: not a JSON object"
  says "requests.jsonl:3: a NUL byte at offset 46 of the line"
  python3 - "$tmp/results.jsonl" <<'PY' || fail "lines 1 and 3 are not recorded as errors, or line 2 not answered"
import json, sys
recs = {r["line"]: r for r in map(json.loads, open(sys.argv[1]))}
assert sorted(recs) == [1, 2, 3] and "error" in recs[1] and "answer" in recs[2], recs
assert "NUL" in recs[3]["error"], recs
PY
  ;;
eval_empty_context)
  # An empty context still encodes to the chat template's header, and was answered as a
  # document: an error for its line, as for an empty query; the other lines are answered.
  printf '%s\n' '{"context": "", "query": "Why?"}' '{"context": "kalo miren tas", "query": ""}' \
    '{"context": "kalo miren tas", "query": "Why?"}' >"$tmp/requests.jsonl"
  expect 1 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/requests.jsonl" \
    --out "$tmp/results.jsonl" --max-new-tokens 2
  says "requests.jsonl:1: the context is empty"; says "requests.jsonl:2: the query is empty"
  python3 - "$tmp/results.jsonl" <<'PY' || fail "lines 1 and 2 are not recorded as errors, or line 3 not answered"
import json, sys
recs = {r["line"]: r for r in map(json.loads, open(sys.argv[1]))}
assert sorted(recs) == [1, 2, 3] and "answer" in recs[3], recs
assert "context is empty" in recs[1]["error"] and "query is empty" in recs[2]["error"], recs
PY
  ;;
eval_out_bad_line_number)
  # A record of --out names a request line that --requests does not have (huge numbers crashed
  # rank 0), or one that is not a whole number: refused, naming the --out line, and the file kept.
  printf '%s\n' '{"context": "kalo miren tas", "query": "Why?"}' \
    '{"context": "quil ne sar", "query": "Why?"}' >"$tmp/requests.jsonl"
  for n in 1e15 2000000000 3.7 3 0 '"1"'; do
    printf '%s\n' '{"line": 1, "answer": "vo"}' "{\"line\": $n, \"answer\": \"vo\"}" >"$tmp/results.jsonl"
    cp "$tmp/results.jsonl" "$tmp/before.jsonl"
    expect 1 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/requests.jsonl" \
      --out "$tmp/results.jsonl" --max-new-tokens 2
    says "--out $tmp/results.jsonl: line 2: \"line\" must be a whole number from 1 to 2"
    says "remove that line"
    cmp -s "$tmp/results.jsonl" "$tmp/before.jsonl" || fail "--out was changed (\"line\": $n)"
  done
  ;;
eval_out_not_results)
  # --out names a file that is not eval's (notes; a JSON line without "line"; results followed by
  # an unfinished line that no record begins with): refused, and the file left as it was. It was
  # cut at its last newline and the results appended to it.
  echo '{"context": "kalo miren tas", "query": "Why?"}' >"$tmp/requests.jsonl"
  # refused FILE LINE: eval refuses FILE as --out, naming its LINE, and leaves it as it was.
  refused() {
    cp "$1" "$tmp/before.txt"
    expect 1 "${mpirun[@]}" -np 2 "$bin" eval --model "$model" --requests "$tmp/requests.jsonl" \
      --out "$1" --max-new-tokens 2
    says "--out $1: line $2 is not a starinfer result; choose another file"
    cmp -s "$1" "$tmp/before.txt" || fail "$1 was changed"
  }
  printf 'my notes\nmore notes\nunfinished' >"$tmp/notes.txt"
  refused "$tmp/notes.txt" 1
  printf '{"note": "vo"}\n' >"$tmp/notes.jsonl"
  refused "$tmp/notes.jsonl" 1
  printf '{"line": 1, "answer": "vo"}\n\nunfinished' >"$tmp/results.jsonl"
  refused "$tmp/results.jsonl" 3
  ;;
eval_resume_retries_errors)
  # A first run whose flag fails line 2 (more new tokens than the model has positions), then one
  # with the flag fixed: line 2 is tried again and answered, line 1 is not asked again, and the
  # summary says so. Errors were counted as done: "0 answered, 0 failed", exit 0.
  printf '%s\n' '{"context": "kalo miren tas", "query": "Why?", "max_new_tokens": 2}' \
    '{"context": "quil ne sar", "query": "Why?"}' >"$tmp/requests.jsonl"
  args=(eval --model "$model" --requests "$tmp/requests.jsonl" --out "$tmp/results.jsonl")
  expect 1 "${mpirun[@]}" -np 2 "$bin" "${args[@]}" --max-new-tokens 5000
  says "requests.jsonl:2:"; says "1 answered, 1 failed, 0 of those retried"
  expect 0 "${mpirun[@]}" -np 2 "$bin" "${args[@]}" --max-new-tokens 2
  says "1 answered, 0 failed, 1 of those retried after an earlier error"
  expect 0 "${mpirun[@]}" -np 2 "$bin" "${args[@]}" --max-new-tokens 2
  says "0 answered, 0 failed, 0 of those retried"
  python3 - "$tmp/results.jsonl" <<'PY' || fail "the results are not line 1, line 2 failed, line 2 answered"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["line"] for r in recs] == [1, 2, 2], recs
assert "answer" in recs[0] and "error" in recs[1] and "answer" in recs[2], recs
PY
  ;;
bench_star_np2_json)
  expect 0 "${mpirun[@]}" -np 2 "$bin" bench --shape tiny --lengths 128,256 --block-size 64 \
    --anchor-size 32,64 --repeat 2 --query-tokens 8 --decode-tokens 4 --sustained 1 \
    --json "$tmp/bench.jsonl"
  grep -qF "| shape | attn | ranks |" "$tmp/out" || fail "no markdown table on stdout"
  [[ $(grep -c "^| tiny | star | 2 |" "$tmp/out") == 4 ]] || fail "expected 4 table rows"
  # the prefill roofline against the burst rate, then (in brackets) against the sustained one
  [[ $(grep -cE "^\| tiny \| star \| 2 \|.*\| [0-9.]+ \([0-9.]+\) \|" "$tmp/out") == 4 ]] ||
    fail "expected both prefill roofline fractions in every row"
  says "repeat 2/2"; says "sustained over 1 s"
  python3 - "$tmp/bench.jsonl" <<'PY' || fail "the JSON lines lack fields or hold bad values"
import json, sys
fields = {"tool", "shape", "model", "device", "gpu", "attn", "ranks", "active_ranks", "context",
          "block", "anchor", "merge_transport", "query_tokens", "decode_tokens", "repeat",
          "ttft_s", "decode_tokens_per_s", "merge_ms_per_layer", "phase1_s", "phase2_s",
          "peak_gib_per_rank", "roofline", "git_commit", "command"}
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [(r["context"], r["anchor"]) for r in recs] == [(128, 32), (128, 64), (256, 32), (256, 64)]
for r in recs:
    assert set(r) == fields, set(r) ^ fields
    assert r["tool"] == "starinfer" and r["shape"] == "tiny" and r["model"] is None
    assert r["device"] == "cpu" and r["attn"] == "star" and r["ranks"] == 2
    assert r["active_ranks"] == 2 and r["block"] == 64 and r["repeat"] == 2
    assert r["merge_transport"] == "mpi"
    for k in ("ttft_s", "decode_tokens_per_s", "merge_ms_per_layer"):
        s = r[k]
        assert 0 < s["min"] <= s["mean"] <= s["max"] and s["std"] >= 0, (k, s)
    assert len(r["phase1_s"]) == 2 and all(t > 0 for t in r["phase1_s"] + r["phase2_s"])
    assert len(r["peak_gib_per_rank"]) == 2 and all(g > 0 for g in r["peak_gib_per_rank"])
    roof = r["roofline"]
    assert all(roof[k] > 0 for k in roof), roof
    assert {"matmul_tflops_sustained", "prefill_fraction_sustained"} <= set(roof), roof
    assert r["git_commit"] and r["command"].startswith("starinfer bench --shape tiny")
PY
  ;;
bench_global_np2_json)
  expect 0 "${mpirun[@]}" -np 2 "$bin" bench --shape tiny --lengths 128 --attn global \
    --repeat 2 --warmup 0 --query-tokens 8 --decode-tokens 4 --json -
  python3 - "$tmp/out" <<'PY' || fail "the global JSON line is wrong"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 1, "--json - prints JSON lines only"
r = recs[0]
assert r["attn"] == "global" and r["ranks"] == 2 and r["active_ranks"] == 1
assert r["block"] == 128 and r["anchor"] == 128
assert r["phase1_s"][0] > 0 and r["phase1_s"][1] == 0 and r["peak_gib_per_rank"][0] > 0
assert r["ttft_s"]["mean"] > 0 and r["decode_tokens_per_s"]["mean"] > 0
assert r["merge_ms_per_layer"]["max"] == 0
roof = r["roofline"]  # no --sustained: measured in a burst only
assert roof["matmul_tflops"] > 0 and roof["matmul_tflops_sustained"] is None
assert roof["prefill_fraction_sustained"] is None
PY
  ;;
bench_length_too_large)
  # 64M tokens need ~256 GiB of KV cache: refused by the memory plan, the next length still runs.
  expect 1 "${mpirun[@]}" -np 1 "$bin" bench --shape tiny --lengths 64,67108864,96 --repeat 1 \
    --warmup 0 --decode-tokens 2 --json -
  says "context 67108864"; says "MiB"
  python3 - "$tmp/out" <<'PY' || fail "the failed configuration is not reported in its line"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["context"] for r in recs] == [64, 67108864, 96]
assert "error" not in recs[0] and "error" not in recs[2] and recs[2]["ttft_s"]["mean"] > 0
assert "memory" in recs[1]["error"] and recs[1]["ttft_s"] is None
PY
  ;;
bench_model_dir)
  # A model directory instead of a shape: its own weights, random token ids.
  expect 0 "${mpirun[@]}" -np 2 "$bin" bench --model "$model" --lengths 96 --repeat 1 \
    --query-tokens 4 --decode-tokens 3 --json -
  json "d['model'] == '$model' and d['shape'] is None and d['ranks'] == 2 and \
d['ttft_s']['mean'] > 0 and d['decode_tokens_per_s']['mean'] > 0"
  ;;
bench_unwritable_json)
  expect 1 "${mpirun[@]}" -np 2 "$bin" bench --shape tiny --lengths 64 --json "$tmp/no/such/dir.jsonl"
  says "--json"; says "$tmp/no/such/dir.jsonl"
  ;;
bench_unknown_shape)
  expect 1 "${mpirun[@]}" -np 1 "$bin" bench --shape llama-9 --lengths 64
  says "llama-9"; says "llama-3.1-8b"; says "tiny"
  ;;
bench_bad_lengths)
  expect 2 "${mpirun[@]}" -np 1 "$bin" bench --shape tiny --lengths 64,lots
  says "--lengths"; says "lots"
  ;;
bench_empty_list_item)
  # An empty item in a list is a typo, not a list one shorter: refused, naming the flag.
  for list in "--lengths 256,,512" "--lengths 256," "--block-size 64," "--anchor-size ,32"; do
    read -r flag value <<<"$list"
    expect 2 "${mpirun[@]}" -np 1 "$bin" bench --shape tiny --lengths 64 "$flag" "$value"
    says "$flag expects a comma-separated list of whole numbers with no empty item, got '$value'"
  done
  ;;
bench_unknown_argument)
  expect 2 "${mpirun[@]}" -np 1 "$bin" bench --shape tiny --lengths 64 --bogus
  says "unknown argument '--bogus' (see --help)"
  expect 2 "${mpirun[@]}" -np 1 "$bin" bench --shape tiny --lengths 64 --share-gpus extra
  says "unknown argument 'extra' (see --help)"
  ;;
bench_bad_sustained)
  expect 2 "${mpirun[@]}" -np 1 "$bin" bench --shape tiny --lengths 64 --sustained 601
  says "--sustained"; says "600"; says "601"
  ;;
bench_needs_a_model)
  expect 2 "${mpirun[@]}" -np 1 "$bin" bench --lengths 64
  says "--shape"; says "--model"
  ;;
help_lists_every_flag)
  # Every flag that a command takes is listed in its --help, one per option line, and every flag
  # listed there is taken; run's and eval's are in README.md's table. A flag is taken when the
  # command, given it alone, does not call it unknown; the flags tried are those the launcher's
  # sources name. --help (or -h) among other arguments still gives the help.
  for cmd in generate run eval bench; do
    expect 0 "$bin" $cmd --model "$model" --help
    grep -q "^usage: .*starinfer $cmd" "$tmp/out" || fail "$cmd --model M --help gave no usage"
    expect 0 "$bin" $cmd --lengths 5 -h
  done
  python3 - "$bin" "$repo" <<'PY' >"$tmp/err" 2>&1 || fail "help and parsers disagree"
import glob, re, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
bin, repo = sys.argv[1], sys.argv[2]
source = "".join(open(p).read() for p in glob.glob(repo + "/launcher/*.c"))
flags = sorted(set(re.findall(r'"(--[a-z][a-z-]*)"', source)) - {"--help", "--version"})
commands = ["generate", "run", "eval", "bench"]

def taken(cmd, flag):
    r = subprocess.run([bin, cmd, flag], capture_output=True, text=True, timeout=60)
    return f"unknown argument '{flag}'" not in r.stderr

def listed(cmd):
    text = subprocess.run([bin, cmd, "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"^ +(--[a-z][a-z-]*)", text, re.M))

with ThreadPoolExecutor(8) as pool:
    probes = {(c, f): pool.submit(taken, c, f) for c in commands for f in flags}
    helps = {c: pool.submit(listed, c) for c in commands}
bad = []
for c in commands:
    takes = {f for f in flags if probes[c, f].result()}
    shown = helps[c].result()
    bad += [f"{c} takes {f}, its --help does not list it" for f in sorted(takes - shown)]
    bad += [f"{c} --help lists {f}, which it does not take" for f in sorted(shown - takes)]
readme = open(repo + "/README.md").read()
table = readme[readme.index("`run` and `eval` options"):].split("\n\n")[1]
first_cells = [row.split("|")[1] for row in table.splitlines() if row.startswith("| `")]
in_table = set(re.findall(r"--[a-z][a-z-]*", " ".join(first_cells)))
for c in ("run", "eval"):
    bad += [f"README.md's table lacks {c}'s {f}" for f in sorted(helps[c].result() - in_table)]
print("\n".join(bad) or "ok")
sys.exit(1 if bad else 0)
PY
  ;;
*)
  echo "unknown case '$1'"
  exit 2
  ;;
esac
echo "ok: $1"
