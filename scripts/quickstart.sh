#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# quickstart.sh - from a fresh clone to a working TLS echo in one command.
#
#   1. install missing build dependencies (scripts/setup.sh)
#   2. build tlskit, tlsserver and tlsclient (Release) into build/
#   3. make local test certificates in certs/ (scripts/gen-certs.sh; an existing CA is
#      reused, so certificates you already trust stay valid)
#   4. start tlsserver on a free port on localhost
#   5. send a line through it with tlsclient, verifying the server against certs/ca.crt,
#      then again with -v to show what was negotiated
#   6. stop the server and show its log
#
# Usage: scripts/quickstart.sh [-h]
# Environment: BUILD_DIR (default: build/), JOBS (default: nproc),
#              TLSKIT_SKIP_SETUP=1 to skip the package check.
# Exit status: 0 when every step worked, 1 otherwise.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
prog=quickstart
[[ ${1-} == -h || ${1-} == --help ]] && { usage; exit 0; }
cd "$root"
build=${BUILD_DIR:-build}
certs=certs
server=$build/apps/tlsserver/tlsserver
client=$build/apps/tlsclient/tlsclient

# A tutorial's voice: numbered steps, each command shown before it runs, and a failure
# that stands out from the output above it.
step=0
say() { step=$((step + 1)); printf '\n\033[1m[%d] %s\033[0m\n' "$step" "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
die() { printf '\nquickstart: FAILED: %s\n' "$*" >&2; exit 1; }
[[ -t 1 ]] || say() { step=$((step + 1)); printf '\n[%d] %s\n' "$step" "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlskit-quickstart.XXXXXX")
server_pid=
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

say "Checking build dependencies (scripts/setup.sh; installs only what is missing)"
run scripts/setup.sh || die "could not install the build dependencies"
echo "ok"

say "Building tlskit and the apps into $build/"
run cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTLSKIT_BUILD_APPS=ON \
    -DTLSKIT_BUILD_TESTS=OFF >"$tmp/configure.log" 2>&1 ||
    { cat "$tmp/configure.log"; die "cmake configure failed"; }
run cmake --build "$build" -j "$jobs" >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log"; die "build failed"; }
[[ -x $server && -x $client ]] || die "$server or $client was not built"
echo "built $server and $client"

say "Making local test certificates in $certs/ (reusing an existing CA)"
run scripts/gen-certs.sh --out "$certs" || die "scripts/gen-certs.sh failed"

say "Starting tlsserver (an echo server) on a free port on localhost"
printf '$ %s\n' "$server --port 0 --cert $certs/server.crt --key $certs/server.key &"
start_tlsserver "$tmp/server.out" "$tmp/server.log" \
    "$server" --port 0 --cert "$certs/server.crt" --key "$certs/server.key"
server_pid=$srv_pid
if ! wait_listen "$tmp/server.out" "$server_pid" 15; then
    cat "$tmp/server.log" >&2
    die "tlsserver did not start (expected 'tlsserver: listening on ...', got '$srv_line')"
fi
echo "$srv_line"
port=$srv_port

say "Sending a line through TLS with tlsclient (server verified against $certs/ca.crt)"
printf '$ %s\n' "printf 'hello from tlsclient\\n' | $client --ca $certs/ca.crt localhost $port"
reply=$(printf 'hello from tlsclient\n' | timeout 30 "$client" --ca "$certs/ca.crt" localhost "$port") ||
    die "tlsclient failed (exit $?)"
printf '%s\n' "$reply"
[[ $reply == "hello from tlsclient" ]] || die "the echo did not match what was sent"
echo "(echoed back by the server: ok)"

say "The same with -v: what was negotiated, and the server's certificate (on stderr)"
printf '$ %s\n' "printf 'hello again\\n' | $client -v --ca $certs/ca.crt localhost $port 2>&1"
printf 'hello again\n' | timeout 30 "$client" -v --ca "$certs/ca.crt" localhost "$port" 2>&1 ||
    die "tlsclient -v failed (exit $?)"

say "Stopping the server (SIGTERM) and showing its log (one line per connection)"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
cat "$tmp/server.log"
((status == 0)) || die "tlsserver exited with status $status after SIGTERM"

printf '\nquickstart: all steps passed.\nNext:\n'
printf '  %-40s %s\n' "$server --help" "server options (mTLS: --ca, --verify-client)" \
    "$client --help" "client options and exit codes" \
    "scripts/test.sh" "build with sanitizers and run every test"
