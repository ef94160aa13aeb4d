#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# valgrind.sh - run tlsserver and tlsclient under valgrind memcheck through the
# integration scenarios, and report the errors of every run (issue: hostile input).
#
# Builds a Debug tree without sanitizers (valgrind and ASan do not mix) into
# build-valgrind/, generates certificates there, then for each server model (event,
# thread) runs: echo, 5 MB echo, mTLS accepted, mTLS rejected (no client certificate),
# a server with an expired certificate (client must refuse it), plaintext garbage sent to
# the server, an HTTP GET with curl (--mode http), SIGTERM with a client still connected,
# and the normal SIGTERM stop; plus start-up errors (missing certificate file, port in
# use). Every tlsserver and tlsclient process runs under
#   valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
# so a definite or indirect leak counts as an error, like an invalid read.
#
# Usage: scripts/valgrind.sh [--model event|thread]... [--keep]
#   --model M   only this server model (repeatable; default: event and thread)
#   --keep      keep the logs directory even when everything is clean
# Environment: BUILD_DIR (default: build-valgrind/ at the repository root), JOBS.
# Exit status: 0 when every run is clean and behaved as expected; 1 otherwise; 2 usage.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
prog=valgrind.sh
build=${BUILD_DIR:-$root/build-valgrind}
models=()
keep=0

while (($#)); do
    case $1 in
    --model) [[ ${2-} == event || ${2-} == thread ]] || usage_error "--model event|thread"
        models+=("$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
    esac
done
((${#models[@]})) || models=(event thread)

for tool in valgrind cmake curl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian package: $tool)"
done

say "building Debug (no sanitizers) into $build"
build_apps "$build" Debug tlsserver tlsclient
server=$build/apps/tlsserver/tlsserver
client=$build/apps/tlsclient/tlsclient
certs=$build/certs
"$root/scripts/gen-certs.sh" --out "$certs" --negative --force -q

work=$(mktemp -d "${TMPDIR:-/tmp}/tlskit-valgrind.XXXXXX")
logs=$work/logs
mkdir -p "$logs"
cleanup() {
    local pid
    for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
    if ((keep == 0 && failures == 0)); then rm -rf "$work"; fi
}
failures=0
trap cleanup EXIT

vg=(valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --num-callers=30 --track-origins=yes)
# Under valgrind everything is 20-50 times slower: generous deadlines, never fixed sleeps.
client_timeout=60
results=()   # "name|exit|errors|ok/FAIL|note"

# errors_in LOG: the ERROR SUMMARY count valgrind wrote (or "?" if it wrote none).
errors_in() {
    local n
    n=$(sed -n 's/.*ERROR SUMMARY: \([0-9][0-9]*\) errors.*/\1/p' "$1" | tail -n 1)
    echo "${n:-?}"
}

# record NAME EXIT WANT_EXIT LOG [NOTE]: one line of the report.
record() {
    local name=$1 rc=$2 want=$3 log=$4 note=${5-} errs verdict=ok
    errs=$(errors_in "$log")
    if [[ $errs != 0 || $rc == 99 ]]; then
        verdict=FAIL note="valgrind errors, see $log${note:+; $note}"
    elif [[ $rc != "$want" ]]; then
        verdict=FAIL note="exit $rc, expected $want${note:+; $note}"
    fi
    [[ $verdict == ok ]] || failures=$((failures + 1))
    results+=("$name|$rc|$errs|$verdict|$note")
    printf '  %-44s exit %-3s errors %-3s %s%s\n' "$name" "$rc" "$errs" "$verdict" "${note:+ ($note)}"
}

# ---- the server under valgrind ---------------------------------------------------------
srv_pid= srv_log= srv_err= srv_name=

# start_server NAME ARGS...: tlsserver under valgrind on 127.0.0.1, port 0.
start_server() {
    srv_name=$1
    shift
    srv_log=$logs/$srv_name.server.vg
    srv_err=$logs/$srv_name.server.err
    start_tlsserver "$logs/$srv_name.server.out" "$srv_err" "${vg[@]}" --log-file="$srv_log" \
        "$server" --bind 127.0.0.1 --port 0 --handshake-timeout 60 "$@"
    # valgrind's start-up is slow: up to 120 s.
    wait_listen "$logs/$srv_name.server.out" "$srv_pid" 120 && return 0
    note "tlsserver did not start: $(cat "$srv_err")"
    return 1
}

# stop_server [NOTE]: SIGTERM, wait (bounded), record its exit and valgrind's verdict.
stop_server() {
    local rc=0 i
    kill -TERM "$srv_pid" 2>/dev/null || true
    for ((i = 0; i < 1200; i++)); do
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$srv_pid" 2>/dev/null; then
        kill -KILL "$srv_pid" 2>/dev/null || true
        wait "$srv_pid" 2>/dev/null || true
        record "$srv_name: tlsserver" timeout 0 "$srv_log" "did not exit 120 s after SIGTERM"
        return
    fi
    wait "$srv_pid" || rc=$?
    record "$srv_name: tlsserver (SIGTERM)" "$rc" 0 "$srv_log" "${1-}"
}

# run_client NAME WANT_EXIT INPUT_FILE OUTPUT_FILE ARGS...: tlsclient under valgrind.
run_client() {
    local name=$1 want=$2 in=$3 out=$4 rc=0
    shift 4
    timeout 300 "${vg[@]}" --log-file="$logs/$name.client.vg" "$client" --timeout "$client_timeout" \
        --ca "$certs/ca.crt" --servername localhost "$@" 127.0.0.1 "$srv_port" \
        <"$in" >"$out" 2>"$logs/$name.client.err" || rc=$?
    record "$name: tlsclient" "$rc" "$want" "$logs/$name.client.vg" \
        "$( ((rc == want)) || head -c 300 "$logs/$name.client.err")"
}

# expect_same A B NAME: an exchange's bytes came back unchanged.
expect_same() {
    if ! cmp -s "$1" "$2"; then
        failures=$((failures + 1))
        results+=("$3|-|-|FAIL|echoed bytes differ")
        printf '  %-44s FAIL (echoed bytes differ)\n' "$3"
    else
        results+=("$3|-|-|ok|")
    fi
}

printf 'hello, valgrind\n' >"$work/hello"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$work/5mb"

for model in "${models[@]}"; do
    say "model $model"
    common=(--model "$model" --cert "$certs/server.crt" --key "$certs/server.key" -v)

    # echo, 5 MB, plaintext garbage, http are served by one server; SIGTERM ends it.
    start_server "$model-echo" "${common[@]}"
    run_client "$model-echo" 0 "$work/hello" "$work/out"
    expect_same "$work/hello" "$work/out" "$model-echo: echoed bytes"
    run_client "$model-5mb" 0 "$work/5mb" "$work/out5"
    expect_same "$work/5mb" "$work/out5" "$model-5mb: echoed bytes"
    # Plaintext, not TLS: the server must reject it and go on serving.
    python3 - "$srv_port" <<'EOF' || { failures=$((failures + 1)); echo "  garbage: could not send"; }
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n" + bytes(range(256)) * 8)
s.settimeout(60)
try:
    while s.recv(4096):
        pass
except OSError:
    pass
s.close()
EOF
    run_client "$model-after-garbage" 0 "$work/hello" "$work/out"
    # A client still connected when SIGTERM arrives: the server closes it and exits 0.
    # Its stdin is a FIFO that we hold open and never write: it just waits.
    mkfifo "$work/hold.$model"
    exec {hold}<>"$work/hold.$model"
    before=$(grep -c '^tlsserver: handshake ' "$srv_err" || true)
    ( rc=0
      timeout 300 "${vg[@]}" --log-file="$logs/$model-sigterm-open.client.vg" "$client" \
          --timeout "$client_timeout" --ca "$certs/ca.crt" --servername localhost \
          127.0.0.1 "$srv_port" <"$work/hold.$model" >/dev/null \
          2>"$logs/$model-sigterm-open.client.err" || rc=$?
      echo "$rc" >"$work/sigterm-open.$model.rc" ) &
    held=$!
    for ((i = 0; i < 1200; i++)); do  # until the server logged the held handshake (-v)
        now=$(grep -c '^tlsserver: handshake ' "$srv_err" || true)
        ((now > before)) && break
        sleep 0.1
    done
    stop_server "with a client connected"
    wait "$held" || true
    exec {hold}>&-
    # tlsserver --help promises close_notify to open connections on SIGTERM (exit 0 for
    # the client); a truncation (7) is reported, but valgrind's verdict is what counts
    # here (the event model sends close_notify; the thread model does not).
    held_rc=$(cat "$work/sigterm-open.$model.rc" 2>/dev/null || echo '?')
    if [[ $held_rc == 0 || $held_rc == 7 ]]; then
        record "$model-sigterm-open: tlsclient" "$held_rc" "$held_rc" \
            "$logs/$model-sigterm-open.client.vg" "server stopped while connected: $(
            [[ $held_rc == 0 ]] && echo "got close_notify" || echo "truncated, NO close_notify")"
    else
        record "$model-sigterm-open: tlsclient" "$held_rc" 0 "$logs/$model-sigterm-open.client.vg"
    fi

    # mTLS: accepted with a client certificate, rejected without one.
    start_server "$model-mtls" "${common[@]}" --ca "$certs/ca.crt" --verify-client
    run_client "$model-mtls-ok" 0 "$work/hello" "$work/out" \
        --cert "$certs/client.crt" --key "$certs/client.key"
    expect_same "$work/hello" "$work/out" "$model-mtls-ok: echoed bytes"
    run_client "$model-mtls-nocert" 5 "$work/hello" "$work/out"
    stop_server

    # A server certificate the client must refuse (expired): exit 5 on the client.
    start_server "$model-badcert" --model "$model" --cert "$certs/expired.crt" \
        --key "$certs/expired.key"
    run_client "$model-badcert" 5 "$work/hello" "$work/out"
    stop_server

    # HTTP mode with curl (curl itself is not under valgrind).
    start_server "$model-http" "${common[@]}" --mode http
    # Two GETs on one keep-alive connection: "200:1 200:0" (status:new connections).
    code=$(curl -sS --max-time 120 --cacert "$certs/ca.crt" \
        --resolve "localhost:$srv_port:127.0.0.1" -w '%{http_code}:%{num_connects} ' \
        -o /dev/null "https://localhost:$srv_port/" \
        -o /dev/null "https://localhost:$srv_port/again" 2>&1 || true)
    if [[ $code != "200:1 200:0 " ]]; then
        failures=$((failures + 1))
        results+=("$model-http: curl|-|-|FAIL|status $code")
        printf '  %-44s FAIL (status:connects %s)\n' "$model-http: curl GET x2" "${code:0:200}"
    else
        results+=("$model-http: curl|0|-|ok|")
        printf '  %-44s ok (200, 200 on one keep-alive connection)\n' "$model-http: curl GET x2"
    fi
    stop_server
done

say "start-up errors"
rc=0
"${vg[@]}" --log-file="$logs/startup-missing-cert.vg" "$server" --bind 127.0.0.1 --port 0 \
    --cert "$work/nonexistent.crt" --key "$certs/server.key" >/dev/null 2>&1 || rc=$?
record "startup-missing-cert: tlsserver" "$rc" 1 "$logs/startup-missing-cert.vg"
start_server "port-holder" --cert "$certs/server.crt" --key "$certs/server.key"
rc=0
"${vg[@]}" --log-file="$logs/startup-port-in-use.vg" "$server" --bind 127.0.0.1 \
    --port "$srv_port" --cert "$certs/server.crt" --key "$certs/server.key" >/dev/null 2>&1 || rc=$?
record "startup-port-in-use: tlsserver" "$rc" 1 "$logs/startup-port-in-use.vg"
rc=0
"${vg[@]}" --log-file="$logs/client-refused.vg" "$client" --ca "$certs/ca.crt" 127.0.0.1 1 \
    </dev/null >/dev/null 2>&1 || rc=$?
record "client-refused: tlsclient" "$rc" 3 "$logs/client-refused.vg"
stop_server

total=${#results[@]}
runs=0 dirty=0
for r in "${results[@]}"; do
    IFS='|' read -r _ _ errs _ _ <<<"$r"
    [[ $errs == - ]] && continue
    runs=$((runs + 1))
    [[ $errs == 0 ]] || dirty=$((dirty + 1))
done
printf '\n%s: %d processes under valgrind, %d with errors; %d checks in all, %d failed\n' \
    "$prog" "$runs" "$dirty" "$total" "$failures"
if ((failures || keep)); then printf '%s: logs in %s\n' "$prog" "$logs"; fi
printf '%d passed, %d failed\n' $((total - failures)) "$failures"
((failures == 0))
