#!/usr/bin/env bash
# Starts a real one-node Slurm (munge, slurmctld, slurmd) in a temporary folder, submits
# launcher/starinfer.sbatch with 4 CPU-only ranks and checks its JSON, then runs starinfer once
# under srun --mpi=pmix with 2 ranks, and checks that generate refuses to run on 2. Every daemon
# is stopped by its PID when the test ends.
#
#   bash tests/launch/test_slurm.sh     (from anywhere; STARINFER_BIN defaults to build/starinfer)
#
# Exit status: 0 passed, 1 failed (the logs are printed), 77 skipped (no Slurm or munge here, or
# not root).
# shellcheck disable=SC2317 # the functions below run from the EXIT trap
set -uo pipefail

# shellcheck source=tests/launch/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# ---- what this test needs ----
for tool in munged mungekey slurmctld slurmd sbatch srun scontrol scancel; do
    command -v "$tool" >/dev/null 2>&1 ||
        PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null 2>&1 ||
        skip "'$tool' is not installed (Debian: slurmctld slurmd slurm-client munge libpmix-dev)"
done
export PATH=$PATH:/usr/sbin:/sbin
[ "$(id -u)" -eq 0 ] || skip "slurmd has to run as root to start jobs"

find_starinfer

# Nothing of a surrounding Slurm job may leak into ours.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SALLOC|SRUN)_' || true)

pids=()     # daemons we started, in start order
ctld_pid=""
slurmd_pid=""
jobids=()   # jobs we submitted

stop_pid() { # stop_pid PID: TERM, wait up to 10 s, then KILL.
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        sleep 0.2
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# Processes that carry this test's private folder in their environment: job steps (slurmstepd)
# and ranks left behind if something went wrong. Only ever ours: the folder is unique to this run.
# Read with bash alone, so that the scan starts no process of its own that would match.
our_leftovers() {
    local f pid e
    for f in /proc/[0-9]*/environ; do
        pid=${f#/proc/}
        pid=${pid%/environ}
        [ "$pid" = "$$" ] && continue
        while IFS= read -r -d '' e; do
            if [ "$e" = "SLURM_CONF=$D/slurm.conf" ]; then
                echo "$pid"
                break
            fi
        done 2>/dev/null <"$f"
    done
}

print_logs() {
    local f
    print_tails "$D"/job/*.log "$D"/*.log "$D"/*.out "$D"/*.err "$D"/munge/munged.log "$D"/munge/munged.out
    for f in "$D"/job/*.json "$D"/srun.json; do
        [ -f "$f" ] || continue
        echo "----- ${f#"$D"/} -----"
        head -c 4000 "$f"
        echo
    done
}

teardown() {
    local j pid i
    if [ "${#jobids[@]}" -gt 0 ] && kill -0 "${ctld_pid:-0}" 2>/dev/null; then
        for j in "${jobids[@]}"; do
            timeout 10 scancel "$j" 2>/dev/null
        done
    fi
    # slurmd, then slurmctld, then munged.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_pid "${pids[$i]}"
    done
    for pid in $(our_leftovers); do
        kill -KILL "$pid" 2>/dev/null
    done
}

make_test_dir si-slurm
chmod 711 "$D"
mkdir -p "$D/run" "$D/state" "$D/spool" "$D/job" "$D/munge"
chmod 711 "$D/run"
chmod 700 "$D/munge"

# ---- munge ----
mungekey -c -k "$D/munge/munge.key" >/dev/null 2>&1 || mungekey --create --keyfile="$D/munge/munge.key" ||
    fail "mungekey could not make a key"
chmod 600 "$D/munge/munge.key"
munged -F --key-file="$D/munge/munge.key" --socket="$D/run/munge.sock" \
    --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" \
    --seed-file="$D/munge/munged.seed" >"$D/munge/munged.out" 2>&1 &
munged_pid=$!
pids+=("$munged_pid")
for ((i = 0; i < 50; i++)); do
    [ -S "$D/run/munge.sock" ] && break
    kill -0 "$munged_pid" 2>/dev/null || fail "munged ended at start: $(cat "$D/munge/munged.out")"
    sleep 0.1
done
[ -S "$D/run/munge.sock" ] || fail "munged did not open its socket"

# ---- free TCP ports for slurmctld and slurmd ----
port_busy() { # port_busy PORT: 0 when something listens on PORT (any address).
    local hex
    hex=$(printf '%04X' "$1")
    grep -qE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
pick_ports() { # sets ctl_port and slurmd_port (ctl_port + 1), both free now
    local p i
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
        if ! port_busy "$p" && ! port_busy $((p + 1)); then
            ctl_port=$p
            slurmd_port=$((p + 1))
            return 0
        fi
    done
    return 1
}

node=$(hostname -s 2>/dev/null || hostname)
mkdir -p "$D/spool/$node" "$D/tmp"
export SLURM_CONF=$D/slurm.conf
write_conf() {
    cat >"$SLURM_CONF" <<EOF
ClusterName=sitest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/run/munge.sock
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=pmix
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
MailProg=/bin/true
TmpFS=$D/tmp
NodeName=$node NodeAddr=127.0.0.1 CPUs=4 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

# start_slurm: slurmctld, then slurmd, on the ports picked; 0 when the node is IDLE. A port taken
# between the pick and the start makes it return 1 with both daemons stopped, to try others.
start_slurm() {
    local state=""
    slurmctld -D -i -f "$SLURM_CONF" >>"$D/slurmctld.out" 2>&1 &
    ctld_pid=$!
    pids+=("$ctld_pid")
    local deadline=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$deadline" ]; do
        timeout 3 scontrol ping 2>/dev/null | grep -q 'is UP' && break
        kill -0 "$ctld_pid" 2>/dev/null || break
        sleep 0.2
    done
    if ! timeout 3 scontrol ping 2>/dev/null | grep -q 'is UP'; then
        say "slurmctld did not come up on port $ctl_port"
        stop_pid "$ctld_pid"
        return 1
    fi
    slurmd -D -N "$node" -f "$SLURM_CONF" >>"$D/slurmd.out" 2>&1 &
    slurmd_pid=$!
    pids+=("$slurmd_pid")
    deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
        state=$(timeout 3 scontrol show node "$node" 2>/dev/null | sed -n 's/.* State=\([A-Z_+]*\).*/\1/p')
        [[ "$state" == IDLE* ]] && return 0
        kill -0 "$slurmd_pid" 2>/dev/null || break
        sleep 0.2
    done
    say "node $node is '$state', not IDLE (slurmd on port $slurmd_port)"
    stop_pid "$slurmd_pid"
    stop_pid "$ctld_pid"
    return 1
}

up=0
for attempt in 1 2 3; do
    pick_ports || fail "found no free pair of TCP ports"
    write_conf
    rm -rf "${D:?}/state" && mkdir -p "$D/state"
    if start_slurm; then
        up=1
        break
    fi
done
[ "$up" -eq 1 ] || fail "Slurm did not start in $attempt attempts"
say "Slurm up: node $node, ports $ctl_port/$slurmd_port"

if ! timeout 10 srun --mpi=list 2>&1 | grep -qw pmix; then
    skip "Slurm has no pmix MPI plugin (Debian: libpmix-dev); Open MPI needs srun --mpi=pmix"
fi

# ---- the request ----
ctx=$D/context.txt
write_context "$ctx" "The lighthouse keeper's log, kept on the island of Varra through one long winter." \
    "The keeper's cat was named Marlow, and the supply boat came every second Tuesday." \
    the keeper wrote that storms came from the north and the lamp burned through every \
    night while ships passed the reef and gulls slept on the rocks below the tower

# ---- 1: sbatch --wait with the template, 4 ranks on one node ----
export MODEL=$model CONTEXT=$ctx QUERY="What was the keeper's cat named?" EXTRA="--max-new-tokens 4"
export STARINFER_BIN=$bin
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export BLOCK=128 ANCHOR=64 # several blocks per rank
unset RESULT QUERY_FILE
export TMPDIR=$D/tmp # the ranks' and PMIx's scratch files stay in our folder

# The whole test stays within 225 s, under ctest's 240 s, so that it can always clean up.
limit() { # limit MAX RESERVE: the seconds left, keeping RESERVE for later steps, at most MAX
    local left=$((225 - SECONDS - $2))
    [ "$left" -gt "$1" ] && left=$1
    if [ "$left" -lt 20 ]; then
        say "FAIL: out of time ($SECONDS s spent)" >&2
        return 1
    fi
    echo "$left"
}
sbatch_s=$(limit 100 40) || exit 1
t0=$(date +%s)
timeout "$sbatch_s" sbatch --wait --parsable --nodes=1 --ntasks-per-node=4 --chdir="$D/job" \
    --output="$D/job/starinfer-%j.log" --export=ALL "$repo/launcher/starinfer.sbatch" \
    >"$D/sbatch.out" 2>"$D/sbatch.err"
sbatch_rc=$?
jobid=$(sed -n '1{s/;.*//;p;}' "$D/sbatch.out")
[ -n "$jobid" ] && jobids+=("$jobid")
[ -n "$jobid" ] || fail "sbatch did not take the job: $(cat "$D/sbatch.err")"
[ "$sbatch_rc" -ne 124 ] || fail "job $jobid did not end within $sbatch_s s"
jstate=$(timeout 10 scontrol show job "$jobid" 2>/dev/null | sed -n 's/^ *JobState=\([A-Z_]*\).*/\1/p')
exitcode=$(timeout 10 scontrol show job "$jobid" 2>/dev/null | sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p')
say "job $jobid: $jstate, exit code $exitcode, sbatch --wait status $sbatch_rc, $(($(date +%s) - t0)) s"
[ "$sbatch_rc" -eq 0 ] || fail "sbatch --wait ended with status $sbatch_rc"
[ "$jstate" = COMPLETED ] || fail "job $jobid ended as '$jstate', not COMPLETED"
[ "$exitcode" = "0:0" ] || fail "job $jobid exit code $exitcode"

result=$D/job/starinfer-$jobid.json
[ -s "$result" ] || fail "the job wrote no JSON next to its log ($result)"
check_json "$result" 4 || fail "the job's JSON is not what it should be"
grep -Eq '"block_size":[[:space:]]*128' "$result" || fail "the job did not pass BLOCK=128 as --block-size"
grep -Eq '"anchor_size":[[:space:]]*64' "$result" || fail "the job did not pass ANCHOR=64 as --anchor-size"

# ---- 2: srun --mpi=pmix directly, 2 ranks ----
srun_s=$(limit 60 25) || exit 1
if ! timeout "$srun_s" srun --mpi=pmix -n 2 --kill-on-bad-exit=1 --chdir="$D" \
    "$bin" run --model "$model" --context "$ctx" --query "$QUERY" --max-new-tokens 4 --json \
    >"$D/srun.json" 2>"$D/srun.err"; then
    fail "srun --mpi=pmix -n 2 failed"
fi
check_json "$D/srun.json" 2 || fail "srun's JSON is not what it should be"

# ---- 3: generate under srun -n 2: refused on both tasks, said once (each would answer) ----
srun_s=$(limit 30 0) || exit 1
timeout "$srun_s" srun --mpi=pmix -n 2 --chdir="$D" "$bin" generate --model "$model" \
    --prompt "Hello" --max-new-tokens 2 >"$D/generate.out" 2>"$D/generate.err"
generate_rc=$?
[ "$generate_rc" -ne 0 ] && [ "$generate_rc" -ne 124 ] ||
    fail "generate under srun -n 2 ended with status $generate_rc: $(cat "$D/generate.err")"
[ "$(grep -c "generate runs on one process" "$D/generate.err")" -eq 1 ] ||
    fail "generate under srun -n 2 did not refuse once: $(cat "$D/generate.err")"
[ ! -s "$D/generate.out" ] || fail "generate under srun -n 2 printed an answer"

say "PASS"
exit 0
