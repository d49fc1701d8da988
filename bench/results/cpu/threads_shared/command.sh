# bash command.sh CONTEXT OUT OLD_STARINFER NEW_STARINFER, from the repository root.
# Four CPU ranks on this machine's 2 cores, OMP_NUM_THREADS unset unless said: 1b0731c (before) and 6465452.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset OMP_NUM_THREADS OPENBLAS_NUM_THREADS
ctx=$1 out=$2 old=$3 new=$4
for r in 1 2; do
  for who in old new old_omp1; do
    bin=$old; [ $who = new ] && bin=$new
    env=(); [ $who = old_omp1 ] && env=(env OMP_NUM_THREADS=1)
    t0=$(date +%s.%N)
    "${env[@]}" mpirun --oversubscribe -np 4 -x OMP_NUM_THREADS "$bin" run --model bench/accuracy/model --context "$ctx" \
      --query "Which word comes first?" --max-new-tokens 4 --json > "$out/$who-$r.json" 2> "$out/$who-$r.err"
    t1=$(date +%s.%N)
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); t=d['timings']; print(sys.argv[2], sys.argv[3], 'job %.2f s' % (float(sys.argv[5]) - float(sys.argv[4])), 'ttft %.3f s' % t['time_to_first_token_s'], 'decode %.1f tokens/s' % t['decode_tokens_per_s'], d['tokens'])" "$out/$who-$r.json" $who $r $t0 $t1
  done
done
