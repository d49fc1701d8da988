#!/usr/bin/env bash
# The last code commit on one GPU: fixtures, Star at 2 ranks, generate, and the 8B model
# (Transformers' save_pretrained layout: no tensor left unused, so no warning).
build=BUILD_final out=$OUT/d
source tests/gpu/common.sh
{ nvidia-smi -L; $build/starinfer --version; } | tee -a $summary
step gpu_model_fixtures 120 $build/tests/test_model
step gpu_star_np2 60 "${mpirun[@]}" -np 2 $build/tests/mpi/test_star
step gpu_generate 60 $build/starinfer generate --device cuda --model tests/fixtures/models/tiny-llama3 --prompt "Hello there" --max-new-tokens 8 --json
step make_8b 240 python3 tests/gpu/make_8b_reference.py WORK/g8
STARINFER_FIXTURES=WORK/g8 STARINFER_TEST_MODELS=llama8b step gpu_model_8b 240 $build/tests/test_model
step generate_8b 120 $build/starinfer generate --model WORK/g8/models/llama8b --prompt "Hello there" --max-new-tokens 4
{ echo "unused-tensor warnings on the 8B model: $(grep -c 'not used by the model' $logs/generate_8b.log)"; grep -h "max relative\|weights:" $logs/*.log; } > $out/details.txt
cd $OUT && tar czf r.tgz d
