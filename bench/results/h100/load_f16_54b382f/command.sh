#!/usr/bin/env bash
build=BUILD_final out=$OUT/f16b
source tests/gpu/common.sh
{ nvidia-smi -L; $build/starinfer --version; } | tee -a $summary
step gpu_ops 120 $build/tests/gpu/test_gpu_ops
step gpu_ops_fp32 120 $build/tests/gpu/test_gpu_ops --fp32
step gpu_model_fixtures 120 $build/tests/test_model
STARINFER_TEST_DEVICE=cuda-fp32 step gpu_model_fixtures_fp32 120 $build/tests/test_model
step gpu_star_np2 60 "${mpirun[@]}" -np 2 $build/tests/mpi/test_star
step make_8b 240 python3 tests/gpu/make_8b_reference.py WORK/g8
step make_8b_f16 240 python3 tests/gpu/f16_copy.py WORK/g8/models/llama8b WORK/g8f/models/llama8b
cp -r WORK/g8/reference WORK/g8f/
STARINFER_FIXTURES=WORK/g8 STARINFER_TEST_MODELS=llama8b step gpu_model_8b_bf16 240 $build/tests/test_model
STARINFER_FIXTURES=WORK/g8f STARINFER_TEST_MODELS=llama8b step gpu_model_8b_f16 240 $build/tests/test_model
for i in 1 2 3; do
  for d in g8 g8f; do
    step load_${d}_$i 120 $build/starinfer generate --model WORK/$d/models/llama8b --prompt "Hello there" --max-new-tokens 4 --json
    python3 -c "import json,sys; t=open(sys.argv[1]).read(); d=json.loads(t[t.index(chr(10)+'{')+1:]); print('$d', d['timings'])" $logs/load_${d}_$i.log | tee -a $out/load.txt
    grep "weights:" $logs/load_${d}_$i.log | tail -1 | tee -a $out/load.txt
  done
done
step load_time_f16 300 bash bench/load_time.sh WORK/g8f/models/llama8b $out/load_time_f16 3 starinfer=$build/starinfer
cat $out/load_time_f16/load.md
grep -h "max relative\|below f16\|weight upload\|FAIL" $logs/*.log > $out/details.txt
cd $OUT && tar czf r.tgz f16b
