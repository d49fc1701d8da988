#!/usr/bin/env bash
# The fifteenth session's last code on one GPU: the checks, the sampler on non-finite logits,
# ranks that disagree, and the 16K first token.
build=BUILD_final out=$OUT/c
bash tests/gpu/run_gpu.sh $build $OUT/c/checks --skip-8b > $OUT/c_checks.log 2>&1
source tests/gpu/common.sh
{ nvidia-smi -L; $build/starinfer --version; } | tee -a $summary
mkdir -p WORK/nanm && cp tests/fixtures/models/tiny-llama3/* WORK/nanm/
python3 - <<'PY'
import json, struct
with open("WORK/nanm/model.safetensors", "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    t = json.loads(f.read(n))["model.norm.weight"]
    f.seek(8 + n + t["data_offsets"][0]); f.write(struct.pack("<H", 0x7FC0))
PY
python3 -c "print(' '.join(['kalo miren tas vo'] * 100))" > WORK/ctx.txt
step nan_generate_bf16 60 $build/starinfer generate --device cuda --model WORK/nanm --prompt Hello --max-new-tokens 4 --json
step nan_generate_fp32 60 $build/starinfer generate --device cuda --dtype fp32 --model WORK/nanm --prompt Hello --max-new-tokens 4 --json
step nan_run_np2 60 "${mpirun[@]}" -np 2 $build/starinfer run --device cuda --share-gpus --model WORK/nanm --context WORK/ctx.txt --query Why? --max-new-tokens 4 --json
step ok_run_np2 60 "${mpirun[@]}" -np 2 $build/starinfer run --device cuda --share-gpus --model tests/fixtures/models/tiny-llama3 --context WORK/ctx.txt --query Why? --max-new-tokens 4 --json
step generate_np2_refused 60 "${mpirun[@]}" -np 2 $build/starinfer generate --model tests/fixtures/models/tiny-llama3 --prompt Hello
step bench_16k 300 $build/starinfer bench --shape llama-3.1-8b --lengths 16384 --attn global --device cuda --repeat 3 --warmup 1 --decode-tokens 32 --json $out/bench_16k.jsonl
for s in nan_generate_bf16 nan_generate_fp32 nan_run_np2 generate_np2_refused; do
  { echo "== $s"; grep -h "not finite\|one process\|error" $logs/$s.log | head -3; } >> $out/details.txt
done
grep -h "answer" $logs/ok_run_np2.log | head -2 >> $out/details.txt
python3 -c "
import json
for r in map(json.loads, open('$out/bench_16k.jsonl')):
    print('bench 16K global: ttft', r['ttft_s'], 'decode', r['decode_tokens_per_s']['mean'])" >> $out/details.txt
cd $OUT && tar czf r.tgz c c_checks.log
