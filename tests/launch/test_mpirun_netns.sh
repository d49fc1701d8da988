#!/usr/bin/env bash
# Two "hosts" on one machine: two network namespaces joined by a veth pair, each with its own
# hostname (UTS namespace). launcher/starinfer-mpirun starts 4 ranks, 2 per host, over TCP on a
# private /24, through a launch agent that stands in for ssh. Checks that the ranks land on two
# distinct hosts and that starinfer answers with 4 ranks. Namespaces are removed when it ends.
#
#   bash tests/launch/test_mpirun_netns.sh   (from anywhere; STARINFER_BIN defaults to build/starinfer)
#
# Exit status: 0 passed, 1 failed (the logs are printed), 77 skipped (no permission for network
# namespaces here, or the two-host launch itself does not work on this machine).
# shellcheck disable=SC2317 # the functions below run from the EXIT trap
set -uo pipefail

# shellcheck source=tests/launch/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
wrapper=$repo/launcher/starinfer-mpirun

export PATH=$PATH:/usr/sbin:/sbin
for tool in ip unshare mpirun timeout; do
    command -v "$tool" >/dev/null 2>&1 || skip "'$tool' is not installed (Debian: iproute2, util-linux, openmpi-bin)"
done
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
find_starinfer

# Unique per run: namespaces, the veth, the hostnames.
tag=$$
ns=("si-h1-$tag" "si-h2-$tag")
veth="siv$tag"
hosts=("sihost1-$tag" "sihost2-$tag")
made_ns=()

print_logs() { print_tails "$D"/*.out "$D"/*.err; }

teardown() {
    local n pid left=0
    # Whatever still runs inside our namespaces (ranks, orted) ends first, by PID.
    for n in ${made_ns[@]+"${made_ns[@]}"}; do
        for pid in $(ip netns pids "$n" 2>/dev/null); do
            kill -TERM "$pid" 2>/dev/null && left=1
        done
    done
    [ "$left" -eq 1 ] && sleep 1
    for n in ${made_ns[@]+"${made_ns[@]}"}; do
        for pid in $(ip netns pids "$n" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$n" 2>/dev/null # takes the veth inside it along
    done
}

make_test_dir si-netns
mkdir -p "$D/tmp"

# ---- a private /24 that this machine does not route already ----
subnet=""
for ((i = 0; i < 50; i++)); do
    a=$((200 + RANDOM % 50))
    b=$((RANDOM % 256))
    if ! ip -4 route show 2>/dev/null | grep -q "^10\.$a\.$b\." &&
        ! ip -4 addr show 2>/dev/null | grep -q "inet 10\.$a\.$b\."; then
        subnet="10.$a.$b"
        break
    fi
done
[ -n "$subnet" ] || fail "found no free 10.x.y.0/24"
ips=("$subnet.1" "$subnet.2")

# ---- the two hosts ----
for n in "${ns[@]}"; do
    if ! ip netns add "$n" 2>"$D/netns.err"; then
        skip "cannot make network namespaces here ($(head -n 1 "$D/netns.err"))"
    fi
    made_ns+=("$n")
done
ip link add "$veth" netns "${ns[0]}" type veth peer name "$veth" netns "${ns[1]}" 2>"$D/veth.err" ||
    skip "cannot make a veth pair here ($(head -n 1 "$D/veth.err"))"
for k in 0 1; do
    ip -n "${ns[$k]}" addr add "${ips[$k]}/24" dev "$veth" || fail "cannot give ${ns[$k]} ${ips[$k]}"
    ip -n "${ns[$k]}" link set lo up || fail "cannot bring up lo in ${ns[$k]}"
    ip -n "${ns[$k]}" link set "$veth" up || fail "cannot bring up $veth in ${ns[$k]}"
done
if ! ip netns exec "${ns[0]}" unshare --uts sh -c "hostname ${hosts[0]}" 2>"$D/uts.err"; then
    skip "cannot give a namespace its own hostname ($(head -n 1 "$D/uts.err"))"
fi
if command -v ping >/dev/null 2>&1; then
    up=0
    for ((i = 0; i < 50; i++)); do
        if ip netns exec "${ns[0]}" ping -c 1 -W 1 "${ips[1]}" >/dev/null 2>&1; then
            up=1
            break
        fi
        sleep 0.1
    done
    [ "$up" -eq 1 ] || skip "the veth link between the namespaces does not pass traffic"
fi
say "hosts ${hosts[0]} (${ips[0]}) and ${hosts[1]} (${ips[1]}) on $subnet.0/24"

# ---- the launch agent: stands in for ssh; 'agent.sh HOST CMD...' runs CMD on HOST ----
agent=$D/agent.sh
cat >"$agent" <<EOF
#!/bin/sh
# Launch agent for mpirun (plm_rsh_agent), written by $name.
host=\$1
shift
case "\$host" in
${ips[0]}) ns=${ns[0]} hn=${hosts[0]} ;;
${ips[1]}) ns=${ns[1]} hn=${hosts[1]} ;;
*) echo "agent.sh: unknown host \$host" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$hn; \$*"
EOF
chmod +x "$agent"

hostfile=$D/hostfile
printf '%s slots=2\n%s slots=2\n' "${ips[0]}" "${ips[1]}" >"$hostfile"

# Runs the wrapper as the first host would: mpirun in namespace 1 under that host's name.
export TMPDIR=$D/tmp # Open MPI's session folders stay in ours
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
on_host1() { # on_host1 SECONDS CMD...
    local secs=$1
    shift
    # shellcheck disable=SC2016 # $0 and $@ are the inner shell's
    timeout -k 5 "$secs" ip netns exec "${ns[0]}" unshare --uts \
        sh -c 'hostname "$0" && exec "$@"' "${hosts[0]}" "$@"
}
launch=("$wrapper" --np 4 --hostfile "$hostfile" --network tcp --iface "$subnet.0/24"
    --launch-agent "$agent")

# ---- 1: where do 4 ranks land? (the launch alone, with hostname as the program) ----
ok=0
for attempt in 1 2; do
    STARINFER_BIN=hostname on_host1 45 "${launch[@]}" -- >"$D/hostname.out" 2>"$D/hostname.err"
    st=$?
    if [ "$st" -eq 0 ]; then
        ok=1
        break
    fi
    say "two-host launch, attempt $attempt, ended with status $st:"
    tail -n 20 "$D/hostname.err"
done
if [ "$ok" -ne 1 ]; then
    skip "mpirun cannot launch across two network namespaces on this machine; the launch itself, not starinfer, fails"
fi
names=$(sort "$D/hostname.out" | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
expect="${hosts[0]}x2 ${hosts[1]}x2 "
[ "$names" = "$expect" ] || fail "ranks landed on '$names', not on '$expect'"
say "ranks per host: $names"

# ---- 2: starinfer run, 4 ranks on the two hosts, TCP between them ----
ctx=$D/context.txt
write_context "$ctx" "Notes from the harbour office of Tessel, written during the spring tides." \
    "The harbour master's dog was called Pepper, and it slept by the door." \
    boats left the harbour at dawn and came back before the tide turned while the \
    harbour master counted crates of fish and salt on the long stone pier

cmd=("${launch[@]}" -- run --model "$model" --context "$ctx"
    --query "What was the harbour master's dog called?" --max-new-tokens 4 --json)
say "$(STARINFER_BIN=$bin "$wrapper" --dry-run "${cmd[@]:1}" 2>&1)"
if ! STARINFER_BIN=$bin on_host1 120 "${cmd[@]}" >"$D/run.out" 2>"$D/run.err"; then
    fail "starinfer run across the two hosts failed"
fi
check_json "$D/run.out" 4 || fail "starinfer's JSON is not what it should be"

say "PASS"
exit 0
