#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fuzz.sh - build the libFuzzer targets (clang, ASan+UBSan, instrumented library) and
# fuzz each for a while; new interesting inputs are merged into the committed corpus
# tests/fuzz/corpus/NAME/ (ctest replays it: fuzz_replay_NAME).
#
# Usage: scripts/fuzz.sh [--time SECONDS] [--target NAME]... [--no-merge]
#   --time SECONDS  fuzzing time per target (default 60)
#   --target NAME   only this target (repeatable); default: all of them:
#                   the tlskit_fuzz_targets list of tests/fuzz/CMakeLists.txt
#   --no-merge      leave tests/fuzz/corpus/ alone (inputs stay in the work copy)
# Environment:
#   BUILD_DIR   build directory (default: build-fuzz/ at the repository root)
#   CC          the compiler (default: clang; libFuzzer needs clang)
#   JOBS        parallel build jobs (default: nproc)
#   FUZZ_ARGS   extra libFuzzer arguments, e.g. FUZZ_ARGS="-workers=2 -jobs=2"
#   TLSKIT_FUZZ_KNOWN  comma-separated ids of checks to skip while a finding is being
#               fixed (tests/fuzz/README.md); default: none. ctest's replay never skips.
# Output: a table of executions, exec/s, new corpus files and crashes per target; crash,
# leak and timeout inputs go to BUILD_DIR/crashes/NAME/, logs to BUILD_DIR/fuzz-logs/.
# Exit status: 0 when no target crashed, 1 otherwise, 2 on usage errors.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
build=${BUILD_DIR:-$root/build-fuzz}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
# Every target CMake builds: the one list, in tests/fuzz/CMakeLists.txt.
read -r -a all <<<"$(sed -n '/^set(tlskit_fuzz_targets/,/)/p' "$root/tests/fuzz/CMakeLists.txt" |
    tr -d '()' | sed 's/set//; s/tlskit_fuzz_targets//' | tr '\n' ' ')"
seconds=60
merge=1
targets=()

usage() { sed -n '3,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
    --time) [ $# -ge 2 ] || { usage >&2; exit 2; }; seconds=$2; shift 2 ;;
    --time=*) seconds=${1#--time=}; shift ;;
    --target) [ $# -ge 2 ] || { usage >&2; exit 2; }; targets+=("$2"); shift 2 ;;
    --target=*) targets+=("${1#--target=}"); shift ;;
    --no-merge) merge=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case $seconds in ''|*[!0-9]*) echo "fuzz.sh: --time: '$seconds' is not a number of seconds" >&2; exit 2 ;; esac
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    case " ${all[*]} " in *" $t "*) ;; *) echo "fuzz.sh: unknown target '$t' (${all[*]})" >&2; exit 2 ;; esac
done

# Largest input per target: room for the 8 KiB HTTP head limit (431), whole handshakes.
max_len() {
    case $1 in
    http) echo 12288 ;;
    cli|options) echo 4096 ;;
    pem|peer_cert) echo 8192 ;;
    *) echo 16384 ;;
    esac
}

cc=${CC:-clang}
command -v "$cc" >/dev/null || { echo "fuzz.sh: $cc not found (apt-get install clang)" >&2; exit 1; }

echo "==> configuring $build (TLSKIT_FUZZ=ON, $cc)"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTLSKIT_FUZZ=ON -DTLSKIT_BUILD_TESTS=ON -DTLSKIT_BUILD_APPS=OFF >/dev/null
echo "==> building ${targets[*]}"
cmake --build "$build" -j "$jobs" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TLSKIT_FUZZ_KNOWN=${TLSKIT_FUZZ_KNOWN-}
mkdir -p "$build/fuzz-logs"
rows=()
reasons=()
crashed=0
for t in "${targets[@]}"; do
    bin=$build/tests/fuzz/fuzz_$t
    corpus=$root/tests/fuzz/corpus/$t
    work=$build/fuzz-work/$t
    crashes=$build/crashes/$t
    log=$build/fuzz-logs/$t.log
    len=$(max_len "$t")
    dict=$root/tests/fuzz/dict/$t.dict
    mkdir -p "$corpus" "$crashes"
    rm -rf "$work"
    mkdir -p "$work"
    cp -a "$corpus"/. "$work"/
    before_crashes=$(find "$crashes" -type f | wc -l)
    args=(-max_total_time="$seconds" -max_len="$len" -timeout=30 -rss_limit_mb=2048
          -print_final_stats=1 -artifact_prefix="$crashes/")
    [ -f "$dict" ] && args+=(-dict="$dict")
    echo "==> fuzzing $t for ${seconds}s (log: $log)"
    set +e
    # shellcheck disable=SC2086
    "$bin" "${args[@]}" ${FUZZ_ARGS:-} "$work" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    eps=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
    if [ -z "$execs" ]; then # no final stats (killed): the last status line
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    fi
    ncrash=$(( $(find "$crashes" -type f | wc -l) - before_crashes ))
    if [ "$rc" -ne 0 ] && [ "$ncrash" -eq 0 ]; then
        ncrash=1 # died without writing an artifact: see the log
    fi
    if [ "$ncrash" -ne 0 ]; then
        crashed=1
        reasons+=("$t: $(grep -m1 -E 'fuzz invariant failed|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$log" | cut -c1-200)")
    fi
    new=0
    if [ "$merge" -eq 1 ]; then
        n0=$(find "$corpus" -type f | wc -l)
        "$bin" -merge=1 -max_len="$len" -timeout=30 -rss_limit_mb=2048 "$corpus" "$work" \
            >>"$log" 2>&1 || echo "fuzz.sh: $t: merge failed (see $log)" >&2
        new=$(( $(find "$corpus" -type f | wc -l) - n0 ))
    fi
    rows+=("$(printf '%-18s %12s %9s %10s %8s' "$t" "${execs:-?}" "${eps:-?}" "$new" "$ncrash")")
done

echo
printf '%-18s %12s %9s %10s %8s\n' target executions exec/s new-corpus crashes
printf '%s\n' "${rows[@]}"
if [ "$crashed" -ne 0 ]; then
    echo
    printf '%s\n' "${reasons[@]}"
    echo "crash inputs: $build/crashes/ (reproduce: $build/tests/fuzz/fuzz_NAME FILE;"
    echo "minimize: $build/tests/fuzz/fuzz_NAME -minimize_crash=1 -runs=10000 FILE)"
    exit 1
fi
