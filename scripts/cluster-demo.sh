#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cluster-demo.sh - several tlsserver instances behind HAProxy, the way a service grows
# past one process or machine. Everything runs on loopback, on ports free at run time:
#
#   - N instances of tlsserver --proxy-protocol sharing one --ticket-key file;
#   - HAProxy (mode tcp) in front: one frontend balancing over all (roundrobin, health
#     checks, send-proxy-v2, connecting from 127.0.0.2 so its own address differs from
#     the clients'), and one frontend per instance, so a client can pick its instance;
#   - clients through HAProxy; the instances' logs show the clients' own addresses
#     (127.0.0.1:PORT); HAProxy's health checks (PROXY v2 LOCAL, from 127.0.0.2) are
#     counted (health_checks in the counters SIGUSR1 prints), not logged (-v logs them);
#   - a session made through instance 1 resumed through instance 2 (the shared ticket
#     key), with tlsclient --sess-out / --sess-in.
# With --check it also tests, and fails (exit 1) when something is wrong:
#   - an instance killed (SIGKILL) under load: every client either gets its bytes back
#     exactly or fails cleanly (an exit status, never a hang), and the next clients are
#     all served (HAProxy routes around it);
#   - a rolling restart of every instance (taken out of HAProxy, SIGTERM: open
#     connections drain; started again on its port; put back once healthy) while
#     clients keep connecting: none of them is refused or fails.
#
# Usage: scripts/cluster-demo.sh [-n N] [--check] [--build DIR] [--keep]
#   -n N         instances (default: 2; 2 to 8)
#   --check      also the kill and rolling-restart tests (what ctest runs)
#   --build DIR  where tlsserver and tlsclient are built (default: build/; BUILD_DIR)
#   --keep       keep the work directory (logs, HAProxy config) and print its path
# Environment: TLSKIT_TEST_CERTS: certificates made by gen-certs.sh (default: made in the
#              work directory).
# Exit status: 0 all went as shown, 1 something failed, 2 usage, 77 HAProxy missing.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
prog=cluster-demo

n=2 check=0 keep=0 build=${BUILD_DIR:-$root/build}
while (($#)); do
    case $1 in
    -n) [[ $# -ge 2 ]] || usage_error "-n needs a number"; n=$2; shift 2 ;;
    --check) check=1; shift ;;
    --build) [[ $# -ge 2 ]] || usage_error "--build needs a directory"; build=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1' (see --help)" ;;
    esac
done
[[ $n =~ ^[2-8]$ ]] || usage_error "-n: '$n' is not a number from 2 to 8"
server=$build/apps/tlsserver/tlsserver
client=$build/apps/tlsclient/tlsclient
[[ -x $server && -x $client ]] || die "no tlsserver/tlsclient in $build (build first)"
haproxy=$(command -v haproxy || true)
[[ -n $haproxy ]] || haproxy=/usr/sbin/haproxy
[[ -x $haproxy ]] || { note "haproxy is not installed (scripts/setup.sh installs it)"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tlskit-cluster.XXXXXX")
pids=()
cleanup() {
    local p
    if ((keep)); then note "work directory kept: $work"; fi
    exec 2>/dev/null # no "Killed" notices from the shell for what is stopped here
    for p in "${pids[@]}"; do kill -9 "$p" || true; done
    wait || true
    ((keep)) || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM # so that the EXIT trap stops everything (e.g. a ctest timeout)
failures=0
fail() { note "FAIL: $*"; failures=$((failures + 1)); }

# ---- material: certificates, the shared ticket key, ports ----
certs=${TLSKIT_TEST_CERTS:-}
if [[ -z $certs ]]; then
    certs=$work/certs
    "$root/scripts/gen-certs.sh" -q --out "$certs" >/dev/null || die "gen-certs.sh failed"
fi
ticket_key=$work/ticket.key
(umask 077 && head -c 80 /dev/urandom >"$ticket_key")

# A port free now on 127.0.0.1 (HAProxy cannot say which port 0 gave it; the instances
# use --port 0 and say so themselves).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- the instances ----
declare -a iport ipid
# start_instance I [PORT]: tlsserver instance I on 127.0.0.1 (PORT, or a free one).
start_instance() {
    local i=$1 port=${2:-0}
    start_tlsserver "$work/i$i.out" "$work/i$i.log.new" "$server" --bind 127.0.0.1 \
        --port "$port" --cert "$certs/server.crt" --key "$certs/server.key" \
        --proxy-protocol --ticket-key "$ticket_key" --workers 1
    ipid[i]=$srv_pid
    pids+=("$srv_pid")
    wait_listen "$work/i$i.out" "$srv_pid" || { cat "$work/i$i.log.new" >&2; die "instance $i did not start"; }
    iport[i]=$srv_port
}
# The log of instance I across restarts.
ilog() { cat "$work"/i"$1".log.* 2>/dev/null; }

for ((i = 1; i <= n; i++)); do start_instance "$i"; done
# Later starts append their logs in new files; the first keeps its own name.
for ((i = 1; i <= n; i++)); do mv "$work/i$i.log.new" "$work/i$i.log.0"; done

# ---- HAProxy ----
port_all=$(free_port)
admin=$(free_port)
declare -a fport
{
    printf 'global\n  stats socket ipv4@127.0.0.1:%s level admin\n' "$admin"
    printf 'defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n'
    printf '  timeout server 30s\n  retries 3\n  option redispatch 1\n'
    printf 'frontend fe_all\n  bind 127.0.0.1:%s\n  default_backend be_all\n' "$port_all"
    printf 'backend be_all\n  balance roundrobin\n'
    for ((i = 1; i <= n; i++)); do
        printf '  server i%d 127.0.0.1:%s source 127.0.0.2 send-proxy-v2 check inter 300ms' \
            "$i" "${iport[i]}"
        printf ' fall 1 rise 2 check-send-proxy\n'
    done
    for ((i = 1; i <= n; i++)); do
        fport[i]=$(free_port)
        printf 'frontend fe_%d\n  bind 127.0.0.1:%s\n  default_backend be_%d\n' "$i" \
            "${fport[i]}" "$i"
        printf 'backend be_%d\n  server i%d 127.0.0.1:%s source 127.0.0.2 send-proxy-v2\n' \
            "$i" "$i" "${iport[i]}"
    done
} >"$work/haproxy.cfg"
"$haproxy" -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
hap_pid=$!
pids+=("$hap_pid")

# admin CMD: one command on HAProxy's runtime API; its answer on stdout.
admin() {
    local reply
    exec 9<>"/dev/tcp/127.0.0.1/$admin" || return 1
    printf '%s\n' "$1" >&9
    reply=$(cat <&9)
    exec 9<&-
    printf '%s\n' "$reply"
}
# server_status NAME: HAProxy's status of be_all/NAME (UP, DOWN, MAINT...).
server_status() {
    admin "show stat" | awk -F, -v s="$1" '$1 == "be_all" && $2 == s { print $18 }'
}
# wait_status NAME STATUS: until HAProxy says so (20 s at most).
wait_status() {
    local t
    for ((t = 0; t < 400; t++)); do
        [[ $(server_status "$1" 2>/dev/null) == "$2"* ]] && return 0
        sleep 0.05
    done
    return 1
}

# exchange PORT IN OUT [ARGS...]: tlsclient through HAProxy's PORT with IN on stdin;
# its stdout in OUT, its stderr in OUT.err. The exit status is tlsclient's (124: hung).
exchange() {
    local port=$1 in=$2 out=$3
    shift 3
    timeout 60 "$client" -q --ca "$certs/ca.crt" --servername localhost --timeout 10 "$@" \
        127.0.0.1 "$port" <"$in" >"$out" 2>"$out.err"
}

for ((i = 1; i <= n; i++)); do
    wait_status "i$i" UP || die "HAProxy does not see instance $i up: $(cat "$work/haproxy.log")"
done
say "$n instances (ports ${iport[*]}) behind HAProxy 127.0.0.1:$port_all (per instance: ${fport[*]})"

# ---- the demo: clients, their addresses, a session resumed across instances ----
for ((k = 1; k <= 2 * n; k++)); do
    printf 'hello from client %d\n' "$k" >"$work/hello$k"
    exchange "$port_all" "$work/hello$k" "$work/hello$k.out" ||
        fail "client $k: exit $? ($(cat "$work/hello$k.out.err"))"
    cmp -s "$work/hello$k" "$work/hello$k.out" || fail "client $k: wrong echo"
done
for ((i = 1; i <= n; i++)); do
    clients=$(ilog "$i" | grep -c '^tlsserver: conn 127\.0\.0\.1:[0-9]* .* ok$' || true)
    say "instance $i served $clients client(s), logged with their own addresses, e.g.:"
    ilog "$i" | grep -m 1 '^tlsserver: conn 127\.0\.0\.1:' | sed 's/^/    /' || true
    ((clients >= 1)) || fail "instance $i logged no client at 127.0.0.1"
    if ilog "$i" | grep -q 'PROXY header from'; then
        fail "instance $i refused a PROXY header: $(ilog "$i" | grep -m 1 'PROXY header from')"
    fi
done
if ilog 1 | grep -q '127\.0\.0\.2:.*error='; then
    fail "instance 1 logged a health check as an error: $(ilog 1 | grep -m 1 '127\.0\.0\.2:')"
fi
kill -USR1 "${ipid[1]}"
for ((t = 0; t < 200; t++)); do
    ilog 1 | grep -q 'counters:.*health_checks=' && break
    sleep 0.05
done
checks=$(ilog 1 | grep -o 'health_checks=[0-9]*' | tail -n 1)
say "HAProxy's health checks (PROXY v2 LOCAL) are counted, not logged: instance 1: ${checks:-none}"
[[ ${checks#health_checks=} =~ ^[1-9] ]] || fail "instance 1 counted no health check"

sess=$work/session.pem
echo resume >"$work/resume"
exchange "${fport[1]}" "$work/resume" "$work/resume.1" --sess-out "$sess" ||
    fail "session through instance 1: exit $?"
exchange "${fport[2]}" "$work/resume" "$work/resume.2" --sess-in "$sess" -v ||
    fail "resumption through instance 2: exit $?"
if grep -q 'resumed: yes' "$work/resume.2.err"; then
    say "a session made through instance 1 resumed through instance 2 (shared --ticket-key)"
else
    fail "the session of instance 1 did not resume on instance 2: $(cat "$work/resume.2.err")"
fi

if ((!check)); then
    ((failures == 0)) || exit 1
    say "done (--check also kills an instance under load and restarts them all)"
    exit 0
fi

# ---- --check: an instance killed under load ----
head -c 32768 /dev/urandom >"$work/chunk"
# paced_client K: a client sending 4 chunks 0.2 s apart (so it is mid-stream when the
# instance dies), its input kept for the comparison. Status in load.K.rc.
paced_client() {
    local k=$1 rc=0
    cat "$work/chunk" "$work/chunk" "$work/chunk" "$work/chunk" >"$work/load.$k.in"
    { for _ in 1 2 3 4; do cat "$work/chunk"; sleep 0.2; done; } |
        timeout 60 "$client" -q --ca "$certs/ca.crt" --servername localhost --timeout 10 \
            127.0.0.1 "$port_all" >"$work/load.$k.out" 2>"$work/load.$k.err" || rc=$?
    echo "$rc" >"$work/load.$k.rc"
}
clients=16
lpids=()
for ((k = 1; k <= clients; k++)); do
    paced_client "$k" &
    lpids+=($!)
done
sleep 0.3 # the clients are mid-stream (pacing, not readiness)
victim=$n
kill -9 "${ipid[victim]}"
wait "${ipid[victim]}" 2>/dev/null || true
wait "${lpids[@]}" || true
exact=0 clean=0
for ((k = 1; k <= clients; k++)); do
    rc=$(cat "$work/load.$k.rc")
    if ((rc == 0)) && cmp -s "$work/load.$k.in" "$work/load.$k.out"; then
        exact=$((exact + 1))
    elif ((rc == 124)); then
        fail "load client $k hung"
    elif ((rc == 0)); then
        fail "load client $k: exit 0 but its echo differs"
    else
        clean=$((clean + 1))
    fi
done
say "instance $victim killed under load: $exact of $clients clients got their bytes back" \
    "exactly, $clean failed cleanly ($(cat "$work"/load.*.err | sort -u | head -n 1))"
((exact + clean == clients)) || fail "some load clients neither completed nor failed cleanly"
wait_status "i$victim" DOWN || fail "HAProxy did not mark instance $victim down"
for ((k = 1; k <= 2 * n; k++)); do
    exchange "$port_all" "$work/hello1" "$work/after$k" || fail "client after the kill: exit $?"
done
say "after the kill every client was served by the others"

# The killed instance comes back on its port.
start_instance "$victim" "${iport[victim]}"
mv "$work/i$victim.log.new" "$work/i$victim.log.1"
wait_status "i$victim" UP || fail "instance $victim did not come back up in HAProxy"

# ---- --check: rolling restart under a steady stream of clients ----
stop_lanes=$work/stop-lanes
# lane L: clients back to back until told to stop; counts in lane.L.{ok,bad}.
lane() {
    local l=$1 ok=0 bad=0 k=0
    while [[ ! -e $stop_lanes ]]; do
        k=$((k + 1))
        if exchange "$port_all" "$work/hello1" "$work/lane.$l.out" &&
            cmp -s "$work/hello1" "$work/lane.$l.out"; then
            ok=$((ok + 1))
        else
            bad=$((bad + 1))
            cp "$work/lane.$l.out.err" "$work/lane.$l.bad.$k"
        fi
    done
    echo "$ok" >"$work/lane.$l.ok"
    echo "$bad" >"$work/lane.$l.bad"
}
lanes=()
for l in 1 2 3; do
    lane "$l" &
    lanes+=($!)
done
gen=2
for ((i = 1; i <= n; i++)); do
    admin "set server be_all/i$i state maint" >/dev/null
    admin "set server be_$i/i$i state maint" >/dev/null
    kill -TERM "${ipid[i]}"
    st=0
    wait "${ipid[i]}" || st=$?
    ((st == 0)) || fail "instance $i exited $st after SIGTERM"
    start_instance "$i" "${iport[i]}"
    mv "$work/i$i.log.new" "$work/i$i.log.$gen"
    admin "set server be_$i/i$i state ready" >/dev/null
    admin "set server be_all/i$i state ready" >/dev/null
    wait_status "i$i" UP || fail "instance $i not up again after its restart"
done
touch "$stop_lanes"
wait "${lanes[@]}" || true
ok=0 bad=0
for l in 1 2 3; do
    ok=$((ok + $(cat "$work/lane.$l.ok")))
    bad=$((bad + $(cat "$work/lane.$l.bad")))
done
say "rolling restart of $n instances: $ok clients served meanwhile, $bad failed"
if ((bad > 0)); then
    fail "clients failed during the rolling restart: $(cat "$work"/lane.*.bad.* | sort -u | head -n 3)"
fi
((ok > 0)) || fail "no client was served during the rolling restart"
if ((failures)); then
    note "$failures check(s) failed; logs in $work (kept)"
    keep=1
    exit 1
fi
say "all checks passed"
