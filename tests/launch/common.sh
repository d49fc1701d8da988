# shellcheck shell=bash
# What the launch tests share, sourced by each: messages and exit statuses (0 passed, 1 failed,
# 77 skipped), the program and model under test, a private folder with the clean-up at exit, the
# context file and the check of starinfer's JSON.
#
# A test defines, before make_test_dir, teardown (stops what it started) and print_logs (shows
# its logs when it fails); at exit, teardown runs, then print_logs on failure, then the folder
# is removed.
# shellcheck disable=SC2317 # cleanup runs from the EXIT trap

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
name=$(basename "$0" .sh)
failed=0

say() { echo "$name: $*"; }
skip() {
    say "SKIP: $*"
    exit 77
}
fail() {
    say "FAIL: $*"
    failed=1
    exit 1
}

# find_starinfer: sets bin ($STARINFER_BIN, default build/starinfer) and model
# ($STARINFER_TEST_MODEL, default the tiny fixture model); fails when either is not there.
find_starinfer() {
    bin=${STARINFER_BIN:-$repo/build/starinfer}
    [[ "$bin" == /* ]] || bin=$PWD/$bin
    model=${STARINFER_TEST_MODEL:-$repo/tests/fixtures/models/tiny-llama3}
    [ -x "$bin" ] || fail "no starinfer program at $bin (build it, or set STARINFER_BIN)"
    [ -f "$model/config.json" ] || fail "no test model at $model (see tests/fixtures/make_fixtures.py)"
}

# make_test_dir PREFIX: sets D to a fresh folder and arms the clean-up.
make_test_dir() {
    D=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
    trap cleanup EXIT
    trap 'exit 1' INT TERM HUP
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    [ "$failed" -eq 1 ] && rc=1
    teardown
    [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && print_logs
    rm -rf "$D"
    exit "$rc"
}

# print_tails FILE...: the last 80 lines of each FILE that is not empty.
print_tails() {
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "----- ${f#"$D"/} (last 80 lines) -----"
        tail -n 80 "$f"
    done
}

# write_context FILE FIRST LAST WORD...: a long document: the line FIRST, 320 WORDs in turn (16
# to a line), then the line LAST, which holds what the query asks.
write_context() {
    local file=$1 first=$2 last=$3 i
    shift 3
    local words=("$@")
    {
        echo "$first"
        for ((i = 0; i < 320; i++)); do
            printf '%s ' "${words[i % ${#words[@]}]}"
            ((i % 16 == 15)) && echo
        done
        echo
        echo "$last"
    } >"$file"
}

# check_json FILE RANKS: FILE holds starinfer's JSON with "ranks": RANKS and a non-empty "tokens".
check_json() {
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$1" "$2" <<'PY'
import json, sys
path, ranks = sys.argv[1], int(sys.argv[2])
text = open(path).read()
start = text.find("{")
if start < 0:
    sys.exit(f"{path}: no JSON object")
obj, _ = json.JSONDecoder().raw_decode(text[start:])
if obj.get("ranks") != ranks:
    sys.exit(f'{path}: "ranks" is {obj.get("ranks")!r}, not {ranks}')
tokens = obj.get("tokens")
if not isinstance(tokens, list) or not tokens:
    sys.exit(f'{path}: "tokens" is {tokens!r}, not a non-empty list')
print(f'{path.rsplit("/", 1)[-1]}: {ranks} ranks, {len(tokens)} tokens, answer {obj.get("answer")!r}')
PY
    elif command -v jq >/dev/null 2>&1; then
        jq -e --argjson r "$2" '.ranks == $r and (.tokens | type == "array" and length > 0)' "$1" >/dev/null ||
            { echo "$1: \"ranks\" is not $2 or \"tokens\" is empty"; return 1; }
    else
        { tr -d ' \n\t' <"$1" | grep -q "\"ranks\":$2[,}]" &&
            tr -d ' \n\t' <"$1" | grep -q '"tokens":\[[0-9]'; } ||
            { echo "$1: \"ranks\" is not $2 or \"tokens\" is empty"; return 1; }
    fi
}
