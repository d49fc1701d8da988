#!/usr/bin/env bash
# The peer merge (branch peer-merge, BUILD_pm) on one GPU, ranks sharing it; main's last commits.
build=$PWD/BUILD_pm out=$OUT/s16
source tests/gpu/common.sh
M=$PWD/BUILD_final
head -c 3000 tests/fixtures/make_fixtures.py > WORK/ctx3k.txt
{ nvidia-smi -L; $build/starinfer --version; $M/starinfer --version; } | tee -a $summary
step gpu_ops_branch 120 $build/tests/gpu/test_gpu_ops
step star_np2_mpi 60 "${mpirun[@]}" -np 2 $build/tests/mpi/test_star
STARINFER_TEST_MERGE_TRANSPORT=peer step star_np2_peer 120 "${mpirun[@]}" -np 2 -x STARINFER_TEST_MERGE_TRANSPORT $build/tests/mpi/test_star
STARINFER_TEST_MERGE_TRANSPORT=peer step star_np3_peer 120 "${mpirun[@]}" -np 3 -x STARINFER_TEST_MERGE_TRANSPORT $build/tests/mpi/test_star
step peer_shared_same 120 bash BUILD_pm/scripts/checks.sh peer-shared-same $build
step nccl_shared_refused 60 bash BUILD_pm/scripts/checks.sh nccl-shared-refused $build
for t in mpi peer; do
  step bench_shared_$t 150 "${mpirun[@]}" -np 2 $build/starinfer bench --device cuda --share-gpus --shape llama-3.2-1b --attn star --lengths 16384 --query-tokens 32 --decode-tokens 16 --warmup 1 --repeat 1 --merge-transport $t --json $out/shared.jsonl
done
step main_model_fixtures 120 $M/tests/test_model
step main_star_np2 60 "${mpirun[@]}" -np 2 $M/tests/mpi/test_star
step main_run_np2 60 "${mpirun[@]}" -np 2 $M/starinfer run --device cuda --share-gpus --model tests/fixtures/models/tiny-llama3 --context WORK/ctx3k.txt --query "Why?" --max-new-tokens 8 --json
step main_generate 60 $M/starinfer generate --device cuda --model tests/fixtures/models/tiny-llama3 --prompt "Hello there" --max-new-tokens 8 --json
step main_bench16k 150 $M/starinfer bench --device cuda --shape llama-3.1-8b --attn global --lengths 16384 --query-tokens 32 --decode-tokens 4 --warmup 1 --repeat 3 --json $out/main16k.jsonl
python3 - $out/shared.jsonl > $out/shared.txt <<'PY'
import json, sys
for r in map(json.loads, open(sys.argv[1])):
    m = r["merge_ms_per_layer"]["mean"]
    print(r["merge_transport"], r["git_commit"], "ttft", r["ttft_s"]["mean"], "decode tok/s", r["decode_tokens_per_s"]["mean"], "merge ms/layer", m)
PY
cat $out/shared.txt
grep -h "max relative\|FAIL\|union\|vs reference" $logs/*.log | head -60 > $out/details.txt
cd $OUT && tar czf r.tgz s16
