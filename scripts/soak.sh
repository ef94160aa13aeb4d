#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# soak.sh - many handshakes against one tlsserver; its file descriptors and memory at the
# end must be within a small margin of where they started (no slow leak).
#
# Builds a RelWithDebInfo tree without sanitizers into build-soak/, starts one tlsserver
# (event model, echo) on 127.0.0.1, and drives COUNT full handshakes at it with tlsbench
# (each: connect, handshake, one 64-byte echo, close_notify, close; 32 concurrent). The
# server's open fds and VmRSS are sampled from /proc at the start, after a warm-up
# (memory pools and per-thread caches grow once), every few seconds, and at the end.
#
# Pass when: the server is still alive and answering; its fd count at the end equals the
# count at the start; its RSS at the end is at most the warm RSS + max(MARGIN_MB, 25%).
#
# Usage: scripts/soak.sh [COUNT]          (default 100000; more than the 2000 of the warm-up)
# Environment: BUILD_DIR (default build-soak/), JOBS, CONNS (default 32),
#              MARGIN_MB (default 8), MODEL (event|thread, default event).
# Exit status: 0 pass, 1 fail.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
prog=soak.sh
[[ ${1-} == -h || ${1-} == --help ]] && { usage; exit 0; }
build=${BUILD_DIR:-$root/build-soak}
count=${1:-100000}
conns=${CONNS:-32}
margin_mb=${MARGIN_MB:-8}
model=${MODEL:-event}
warmup=2000

[[ $count =~ ^[0-9]+$ ]] && ((count > warmup)) || usage_error "COUNT must be > $warmup"

say "building RelWithDebInfo (no sanitizers) into $build"
build_apps "$build" RelWithDebInfo tlsserver tlsbench
server=$build/apps/tlsserver/tlsserver
bench=$build/apps/tlsbench/tlsbench
certs=$build/certs
"$root/scripts/gen-certs.sh" --out "$certs" --force -q

work=$(mktemp -d "${TMPDIR:-/tmp}/tlskit-soak.XXXXXX")
srv_pid=
cleanup() {
    [[ -n $srv_pid ]] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
    [[ -n ${sampler-} ]] && kill "$sampler" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

start_tlsserver "$work/out" "$work/err" "$server" --bind 127.0.0.1 --port 0 --model "$model" -q \
    --cert "$certs/server.crt" --key "$certs/server.key"
wait_listen "$work/out" "$srv_pid" 10 || { cat "$work/err" >&2; die "tlsserver did not start"; }
port=$srv_port

fds() { ls "/proc/$srv_pid/fd" | wc -l; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$srv_pid/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$srv_pid/status"; }
sample() { printf '%-22s fds %4d   VmRSS %7d kB   threads %3d\n' "$1" "$(fds)" "$(rss_kb)" "$(threads)"; }

# bench N: N handshakes with one 64-byte echo each; JSON result on stdout.
bench() {
    "$bench" handshake -q --json -n "$1" -c "$conns" --request 64 --ca "$certs/ca.crt" \
        --servername localhost --timeout 30 "127.0.0.1:$port"
}

say "tlsserver pid $srv_pid on 127.0.0.1:$port (model $model); $count handshakes, $conns at a time"
start_fds=$(fds) start_rss=$(rss_kb)
sample "start (idle)"
bench "$warmup" >"$work/warmup.txt"
sleep 1 # let the last closes land
warm_fds=$(fds) warm_rss=$(rss_kb)
sample "after $warmup warm-up"

(while sleep 5; do sample "during" || break; done) &
sampler=$!
t0=$SECONDS
bench_rc=0
bench $((count - warmup)) >"$work/bench.json" || bench_rc=$?
elapsed=$((SECONDS - t0))
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=
# The last connections close asynchronously: wait (bounded) for the fds to settle.
for ((i = 0; i < 50; i++)); do
    (($(fds) <= start_fds)) && break
    sleep 0.1
done
end_fds=$(fds) end_rss=$(rss_kb)
sample "end ($count total)"

# Still serving?
alive=0
bench 10 >/dev/null 2>&1 && alive=1

done_hs=$(json_get handshakes "$work/bench.json")
errors=$(json_get errors "$work/bench.json")
printf '\n%s: %s handshakes (+%d warm-up) in %d s, %s/s, %s errors (tlsbench exit %d)\n' \
    "$prog" "${done_hs:-?}" "$warmup" "$elapsed" "$(json_get rate "$work/bench.json")" \
    "${errors:-?}" "$bench_rc"
printf '  fds:   start %d, warm %d, end %d\n' "$start_fds" "$warm_fds" "$end_fds"
printf '  VmRSS: start %d kB, warm %d kB, end %d kB (end - warm: %+d kB)\n' \
    "$start_rss" "$warm_rss" "$end_rss" $((end_rss - warm_rss))
limit=$((warm_rss / 4 > margin_mb * 1024 ? warm_rss / 4 : margin_mb * 1024))
ok=1
((bench_rc == 0)) && [[ ${errors:-x} == 0 ]] && ((${done_hs:-0} >= count - warmup)) ||
    { echo "  FAIL: tlsbench: exit $bench_rc, ${done_hs:-?} handshakes, ${errors:-?} errors"; ok=0; }
((end_fds == start_fds)) || { echo "  FAIL: fd count changed ($start_fds -> $end_fds)"; ok=0; }
((end_rss - warm_rss <= limit)) ||
    { echo "  FAIL: RSS grew by $((end_rss - warm_rss)) kB (limit $limit kB)"; ok=0; }
((alive)) || { echo "  FAIL: the server no longer answers"; ok=0; }
kill -TERM "$srv_pid"
rc=0
wait "$srv_pid" || rc=$?
srv_pid=
grep -E 'counters:' "$work/err" | sed 's/^/  /' || true
((rc == 0)) || { echo "  FAIL: tlsserver exited $rc after SIGTERM"; ok=0; }
if ((ok)); then
    echo "$prog: PASS (fds unchanged, RSS within $limit kB of the warm value)"
    exit 0
fi
echo "$prog: FAIL"
exit 1
