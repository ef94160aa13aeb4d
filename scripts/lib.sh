# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# lib.sh - what the scripts share: messages, usage from the header comment, the app
# build, and starting tlsserver and reading its port. Sourced, never run:
#   . "$(dirname "$0")/lib.sh"; prog=NAME.sh
# Sets root (the repository) and jobs (JOBS, or the online CPUs).

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
prog=${prog:-$(basename "$0")}

die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$prog" "$*" >&2; }
say() { printf '%s: %s\n' "$prog" "$*"; }
# usage: the script's header comment from line 3 (line 2 is the SPDX line) to `set -euo`.
usage() { sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
usage_error() { note "$*"; exit 2; }

# build_apps [--keep-config] DIR TYPE TARGET...: configure DIR as CMake build TYPE with
# the apps and without tests or sanitizers (valgrind and the benchmarks need plain
# binaries), then build TARGETs. --keep-config configures only a tree that has no cache
# yet, so a --build DIR the user configured keeps its settings. Quiet unless it fails.
build_apps() {
    local keep=0 dir type log
    [[ $1 == --keep-config ]] && { keep=1; shift; }
    dir=$1 type=$2
    shift 2
    log=$(mktemp "${TMPDIR:-/tmp}/tlskit-build.XXXXXX")
    if ((!keep)) || [[ ! -f $dir/CMakeCache.txt ]]; then
        cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DTLSKIT_SANITIZE=OFF \
            -DTLSKIT_BUILD_TESTS=OFF -DTLSKIT_BUILD_APPS=ON >"$log" 2>&1 ||
            { cat "$log" >&2; rm -f "$log"; die "cmake configure failed ($dir)"; }
    fi
    cmake --build "$dir" -j "$jobs" --target "$@" >"$log" 2>&1 ||
        { tail -n 50 "$log" >&2; rm -f "$log"; die "build failed (cmake --build $dir)"; }
    rm -f "$log"
}

# start_tlsserver OUT ERR COMMAND...: COMMAND (tlsserver, or a wrapper such as valgrind
# followed by tlsserver) in the background, stdout to OUT and stderr to ERR; sets srv_pid.
# Then wait_listen reads the port.
start_tlsserver() {
    local out=$1 err=$2
    shift 2
    : >"$out"
    "$@" >"$out" 2>"$err" &
    # shellcheck disable=SC2034 # the caller waits on it and stops it
    srv_pid=$!
}

# wait_listen OUT PID [SECONDS]: wait (default 20 s) for tlsserver's first stdout line,
# "tlsserver: listening on ADDR:PORT[, ADDR:PORT...]" (flushed, also for --port 0), and
# set srv_line, srv_addr (the first address) and srv_port. Returns 1 if PID exits first
# or time runs out. `read` fails on a line without its newline, so a half-written line
# is never taken for the port.
wait_listen() {
    local out=$1 pid=$2 tries=$((${3:-20} * 20)) i
    srv_line="" srv_addr="" srv_port=""
    for ((i = 0; i < tries; i++)); do
        if IFS= read -r srv_line <"$out" 2>/dev/null; then
            [[ $srv_line == "tlsserver: listening on "* ]] || return 1
            srv_addr=${srv_line#tlsserver: listening on }
            srv_addr=${srv_addr%%,*}
            srv_port=${srv_addr##*:}
            [[ $srv_port =~ ^[0-9]+$ ]]
            return
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# json_get KEY FILE: the top-level value KEY of a JSON object (tlsbench --json), or
# nothing when the file holds no such value (a failed run leaves none).
json_get() {
    python3 - "$1" "$2" <<'PY'
import json, sys
try:
    with open(sys.argv[2]) as f:
        v = json.load(f).get(sys.argv[1])
except (OSError, ValueError, AttributeError):
    v = None
if v is not None:
    print(json.dumps(v))
PY
}
