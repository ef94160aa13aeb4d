#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test.sh - build tlskit with sanitizers and warnings-as-errors, and run every test.
#
# Usage: scripts/test.sh [CTEST-ARGS...]
#   e.g. scripts/test.sh -R package        only tests whose name matches "package"
#        scripts/test.sh -j2 -L unit        two at a time, only the label "unit"
# Environment:
#   BUILD_DIR   build directory (default: build-test/ at the repository root)
#   JOBS        parallel build jobs (default: nproc)
#   TSAN_BUILD_DIR  ThreadSanitizer build directory (default: build-tsan/)
#   TLSKIT_SKIP_TSAN=1    skip the ThreadSanitizer build (only when CTEST-ARGS are given)
#   TLSKIT_SKIP_SETUP=1   do not check/install Debian packages (see scripts/setup.sh)
# Two builds: the whole suite under ASan+UBSan, then the engine's threads under
# ThreadSanitizer (it cannot run inside Criterion, so it is a plain program there).
# Exit status: 0 when every test of both passed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
build=${BUILD_DIR:-$root/build-test}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

banner() { printf '\n==> %s\n' "$*"; }

banner "checking build dependencies (scripts/setup.sh)"
"$root/scripts/setup.sh"

banner "configuring $build (ASan+UBSan, -Werror, tests on)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTLSKIT_SANITIZE=ON -DTLSKIT_WERROR=ON -DTLSKIT_BUILD_TESTS=ON -DTLSKIT_BUILD_APPS=ON

banner "building with $jobs jobs"
cmake --build "$build" -j "$jobs"

tsan=${TSAN_BUILD_DIR:-$root/build-tsan}
if [ $# -eq 0 ] || [ "${TLSKIT_SKIP_TSAN:-0}" != 1 ]; then
    banner "ThreadSanitizer build in $tsan (engine threads)"
    cmake -S "$root" -B "$tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLSKIT_TSAN=ON \
        -DTLSKIT_WERROR=ON -DTLSKIT_BUILD_TESTS=ON
    cmake --build "$tsan" -j "$jobs"
    banner "running the ThreadSanitizer tests: ctest --test-dir $tsan"
    ctest --test-dir "$tsan" --output-on-failure
fi

banner "running the tests: ctest --test-dir $build --output-on-failure -j2 $*"
ctest --test-dir "$build" --output-on-failure -j2 "$@"
