#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh - test an installed tlskit the way an outside user meets it.
#
# Installs a build tree into a scratch prefix (cmake --install BUILD --prefix PREFIX),
# then checks that:
#   - the expected files are installed, and nothing from lib/src/; the installed apps run,
#     and README.md quotes their --help output as it is;
#   - the installed header compiles on its own (C11 and C99 strict, C++ when g++ exists);
#   - the shared library exports exactly the functions the header declares and nothing
#     but tlskit_* symbols, and the static library defines no global symbol outside the
#     tlskit_ namespace (a static link must not collide with the user's own names);
#   - an outside CMake project finds it with find_package(tlskit 0.1) and links
#     tlskit::tlskit and tlskit::tlskit_static, and both programs run;
#   - the README's client and server examples (tests/package/examples/) build against the
#     install and talk to each other over TLS with certificates from scripts/gen-certs.sh;
#   - the same consumer builds with pkg-config, shared and fully static (tlskit), and runs.
#   - a project that embeds the source tree with add_subdirectory() gets the library
#     alone: no tests (so no Criterion), no apps.
#
# Usage: run.sh --build-dir DIR [--work-dir DIR] [--cc CC] [--cxx CXX] [--flags FLAGS]
#   --build-dir DIR  the configured and built tlskit build tree (env TLSKIT_BUILD_DIR)
#   --work-dir DIR   scratch directory, emptied first (default: DIR/tests/package/work)
#   --cc CC          C compiler (env CC, default cc); --cxx CXX likewise (env CXX, g++)
#   --flags FLAGS    extra compile and link flags for every program built here (env
#                    TLSKIT_PACKAGE_FLAGS). A library built with TLSKIT_SANITIZE=ON
#                    needs "-fsanitize=address,undefined": sanitized code must be linked
#                    into a sanitized program.
# Exit status: 0 when every check passed, 1 otherwise, 2 on a usage error.
set -euo pipefail

prog=package/run.sh
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)

build=${TLSKIT_BUILD_DIR:-}
work=
cc=${CC:-cc}
cxx=${CXX:-g++}
flags=${TLSKIT_PACKAGE_FLAGS:-}

usage() {
    sed -n '/^# Usage:/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while (($# > 0)); do
    case $1 in
    --build-dir) build=${2:?}; shift 2 ;;
    --work-dir) work=${2:?}; shift 2 ;;
    --cc) cc=${2:?}; shift 2 ;;
    --cxx) cxx=${2:?}; shift 2 ;;
    --flags) flags=${2-}; shift 2 ;;
    -h | --help) usage ;;
    *) printf '%s: unknown argument: %s\n' "$prog" "$1" >&2; usage ;;
    esac
done
[[ -n $build ]] || usage
[[ -f $build/CMakeCache.txt ]] || { printf '%s: %s: not a CMake build tree\n' "$prog" "$build" >&2; exit 2; }
build=$(cd "$build" && pwd -P)
work=${work:-$build/tests/package/work}
read -ra xflags <<<"$flags"

passed=0
failed=0
server_pid=

step() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok    %s\n' "$*"; passed=$((passed + 1)); }
bad() { printf 'FAIL  %s\n' "$*"; failed=$((failed + 1)); }
die() { printf '%s: %s\n' "$prog" "$*" >&2; summary; exit 1; }
summary() { printf '\npackage: %d passed, %d failed\n' "$passed" "$failed"; }
indent() { sed 's/^/      /' "$@"; }
# check [-v] DESCRIPTION COMMAND...: run the command and count the result; its output is
# shown when it fails (always with -v).
check() {
    local verbose=0 what
    [[ $1 == -v ]] && { verbose=1; shift; }
    what=$1
    shift
    if "$@" >"$work/last.log" 2>&1; then
        ok "$what"
        ((verbose == 0)) || indent "$work/last.log"
    else
        bad "$what"
        indent "$work/last.log"
    fi
}

cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# The code block that follows the line "<!-- WHAT -->" in README.md.
readme_block() {
    awk -v m="<!-- $1 -->" '
        $0 == m { want = 1; next }
        want == 1 && /^```/ { want = 2; next }
        want == 2 && /^```/ { exit }
        want == 2 { print }' "$root/README.md"
}

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

# ------------------------------------------------------------------ install
step "install $build into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; die "cmake --install failed"; }
indent "$work/install.log"

pc=$(find "$prefix" -path '*/pkgconfig/tlskit.pc' | head -n 1)
[[ -n $pc ]] || die "no pkgconfig/tlskit.pc installed"
libdir=$(dirname "$(dirname "$pc")")
header=$prefix/include/tlskit/tlskit.h

for f in "$header" "$libdir/libtlskit.so" "$libdir/libtlskit.a" \
    "$libdir/cmake/tlskit/tlskitConfig.cmake" "$libdir/cmake/tlskit/tlskitConfigVersion.cmake" \
    "$libdir/cmake/tlskit/tlskitTargets.cmake"; do
    check "installed: ${f#"$prefix"/}" test -e "$f"
done
check "only the public header is installed" \
    test "$(find "$prefix/include" -type f | wc -l)" -eq 1
check "SONAME is libtlskit.so.0 (and the link exists)" \
    bash -c 'readelf -d "$1" | grep -q "SONAME.*\[libtlskit\.so\.0\]" && test -e "${1%.so}.so.0"' _ \
    "$libdir/libtlskit.so"
check "installed library has no RPATH into the build tree" \
    bash -c '! readelf -d "$1" | grep -E "R(UN)?PATH" | grep -qF "$2"' _ "$libdir/libtlskit.so" "$build"
for app in tlsserver tlsclient tlsbench; do
    # Every app the build made must be installed, and run from the prefix.
    [[ -x $build/apps/$app/$app ]] || continue
    check "installed app runs: bin/$app --version" \
        env LD_LIBRARY_PATH="$libdir" "$prefix/bin/$app" --version
done

# README.md quotes each app's --help in the code block after "<!-- help: APP -->"; a
# changed --help must be pasted there (the diff below is what to change).
if [[ -f $root/README.md ]]; then
    for app in tlsserver tlsclient tlsbench; do
        [[ -x $prefix/bin/$app ]] || continue
        grep -qF "<!-- help: $app -->" "$root/README.md" || continue
        check "README.md quotes '$app --help' as it is" \
            diff -u <(readme_block "help: $app") \
            <(LD_LIBRARY_PATH="$libdir" "$prefix/bin/$app" --help)
    done
fi

# ------------------------------------------------------------------ header
step "the installed header compiles on its own"
printf '#include <tlskit/tlskit.h>\n#include <tlskit/tlskit.h>\nint main(void) { return 0; }\n' \
    >"$work/header.c"
strict=(-Wall -Wextra -Werror -pedantic)
for std in c11 c99; do
    check "header: $cc -std=$std ${strict[*]}" \
        "$cc" -std="$std" "${strict[@]}" -Wstrict-prototypes -Wundef -Wshadow -Wcast-qual \
        -I"$prefix/include" -fsyntax-only "$work/header.c"
done
if command -v "$cxx" >/dev/null 2>&1; then
    check "header: $cxx -std=c++11 ${strict[*]}" \
        "$cxx" -std=c++11 "${strict[@]}" -Wundef -Wshadow -x c++ -I"$prefix/include" \
        -fsyntax-only "$work/header.c"
else
    printf 'skip  header as C++: %s not found\n' "$cxx"
fi

# ------------------------------------------------------------------ symbols
step "exported symbols"
nm -D --defined-only "$libdir/libtlskit.so" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' |
    sort -u >"$work/exported.txt"
grep -v '^tlskit_' "$work/exported.txt" >"$work/foreign.txt" || true
if [[ -s $work/foreign.txt ]]; then
    bad "libtlskit.so exports only tlskit_* symbols; also exported:"
    indent "$work/foreign.txt"
else
    ok "libtlskit.so exports only tlskit_* symbols ($(wc -l <"$work/exported.txt") of them)"
fi
grep -E '^TLSKIT_API' "$header" | grep -oE '\btlskit_[a-z0-9_]+\(' | tr -d '(' |
    sort -u >"$work/declared.txt"
comm -23 "$work/declared.txt" "$work/exported.txt" >"$work/missing.txt"
if [[ -s $work/missing.txt ]]; then
    bad "every function the header declares is exported; missing:"
    indent "$work/missing.txt"
else
    ok "every function the header declares is exported ($(wc -l <"$work/declared.txt"))"
fi
comm -13 "$work/declared.txt" "$work/exported.txt" >"$work/undeclared.txt"
if [[ -s $work/undeclared.txt ]]; then
    bad "libtlskit.so exports nothing the header does not declare; undeclared:"
    indent "$work/undeclared.txt"
else
    ok "libtlskit.so exports nothing the header does not declare"
fi
# Hidden visibility keeps internal helpers out of the .so, but in the .a every non-static
# function is a global symbol that a static link shares with the user's program. Internal
# names must therefore stay inside the library's namespace (libuv: uv__*, libtls: tls_*).
static_ok='^tlskit_'
nm -g --defined-only "$libdir/libtlskit.a" | awk 'NF >= 3 { print $3 }' | sort -u |
    grep -Ev "$static_ok" >"$work/static-foreign.txt" || true
if [[ -s $work/static-foreign.txt ]]; then
    bad "libtlskit.a defines no global symbol outside tlskit_*; also defined:"
    indent "$work/static-foreign.txt"
else
    ok "libtlskit.a defines no global symbol outside tlskit_*"
fi

# ------------------------------------------------------------------ embedding
step "an outside CMake project: add_subdirectory(tlskit) builds the library alone"
ebuild=$work/embed-build
# pkg-config finds nothing here: a tlskit that still wanted its tests (Criterion, found
# through pkg-config) would not configure.
if PKG_CONFIG_LIBDIR=$work/no-pc-files PKG_CONFIG_PATH= cmake -S "$here/embed" -B "$ebuild" \
    -DTLSKIT_SOURCE="$root" -DCMAKE_BUILD_TYPE=Release >"$work/embed-configure.log" 2>&1 &&
    cmake --build "$ebuild" >"$work/embed-build.log" 2>&1; then
    ok "configure (no tests, no apps, no Criterion) and build the embedding project"
    check -v "embed_static runs (tlskit::tlskit_static from source)" "$ebuild/embed_static"
else
    bad "configure and build the embedding project"
    tail -n 20 "$work/embed-configure.log" "$work/embed-build.log" 2>/dev/null | sed 's/^/      /'
fi

# ------------------------------------------------------------------ CMake consumer
step "an outside CMake project: find_package(tlskit 0.1)"
cbuild=$work/consumer-build
if cmake -S "$here/consumer" -B "$cbuild" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
    >"$work/consumer-configure.log" 2>&1 &&
    cmake --build "$cbuild" >"$work/consumer-build.log" 2>&1; then
    ok "configure and build the consumer"
    found=$(sed -n 's/^tlskit_DIR:PATH=//p' "$cbuild/CMakeCache.txt")
    check "find_package used the scratch prefix ($found)" \
        test "$(cd "$found" && pwd -P)" = "$(cd "$libdir/cmake/tlskit" && pwd -P)"
    check -v "consumer_shared runs (tlskit::tlskit)" "$cbuild/consumer_shared"
    check "consumer_shared loads libtlskit.so from the prefix" \
        bash -c 'ldd "$1" | grep "libtlskit\.so" | grep -qF "$2"' _ "$cbuild/consumer_shared" "$prefix"
    check "consumer_static runs (tlskit::tlskit_static)" "$cbuild/consumer_static"
    check "consumer_static does not need libtlskit.so" \
        bash -c 'readelf -d "$1" >"$1.dyn" && ! grep -q "NEEDED.*libtlskit" "$1.dyn"' _ "$cbuild/consumer_static"
else
    bad "configure and build the consumer"
    cat "$work/consumer-configure.log" "$work/consumer-build.log" 2>/dev/null | sed 's/^/      /'
fi

# ------------------------------------------------------------------ README examples
step "the README examples: client.c talks over TLS to server.c and engine_echo.c"
if [[ -f $root/README.md ]]; then
    for ex in client.c server.c engine_echo.c; do
        check "README.md shows examples/$ex exactly" \
            diff -u "$here/examples/$ex" <(readme_block "example: tests/package/examples/$ex")
    done
fi
if [[ -x $cbuild/example_server && -x $cbuild/example_client ]]; then
    certs=$work/certs
    if bash "$root/scripts/gen-certs.sh" --out "$certs" -q >"$work/certs.log" 2>&1; then
        for example in example_server example_engine_echo; do
        [[ -x $cbuild/$example ]] || { bad "$example not built"; continue; }
        rm -f "$work/server.out"
        mkfifo "$work/server.out"
        "$cbuild/$example" 0 "$certs/server.crt" "$certs/server.key" \
            >"$work/server.out" 2>"$work/server.err" &
        server_pid=$!
        exec 3<"$work/server.out"
        line=
        read -r -t 20 line <&3 || true
        # "listening on 127.0.0.1:PORT, [::1]:PORT": the port follows the first address's last ':'
        first=${line#listening on }
        first=${first%%,*}
        port=${first##*:}
        if [[ $line == "listening on "* && $port =~ ^[0-9]+$ ]]; then
            ok "$example: $line"
            check -v "example_client gets its line echoed" \
                bash -c 'timeout 30 "$1" localhost "$2" "$3" | tee /dev/stderr | grep -q "^hello over TLS$"' _ \
                "$cbuild/example_client" "$port" "$certs/ca.crt"
            check -v "example_client refuses a server it cannot verify (wrong CA)" \
                bash -c '! timeout 30 "$1" localhost "$2" "$3"' _ \
                "$cbuild/example_client" "$port" "$certs/server.crt"
        else
            bad "$example did not print 'listening on ADDR:PORT' (got: '$line')"
        fi
        exec 3<&-
        kill "$server_pid" 2>/dev/null || true
        status=0
        wait "$server_pid" 2>/dev/null || status=$?
        if [[ $example == example_engine_echo ]]; then
            if [[ $status == 0 ]]; then ok "$example stops gracefully on SIGTERM (exit 0)"
            else bad "$example exit status $status after SIGTERM"; fi
        fi
        server_pid=
        if [[ -s $work/server.err ]]; then
            printf '      %s stderr:\n' "$example"
            indent "$work/server.err"
        fi
        done
    else
        bad "scripts/gen-certs.sh --out $certs"
        indent "$work/certs.log"
    fi
else
    bad "examples not built (see the consumer build above)"
fi

# ------------------------------------------------------------------ pkg-config
step "pkg-config: shared and static"
export PKG_CONFIG_PATH=$libdir/pkgconfig
hpart() { sed -n "s/^#define TLSKIT_VERSION_$1 \\([0-9]*\\)\$/\\1/p" "$header"; }
hversion="$(hpart MAJOR).$(hpart MINOR).$(hpart PATCH)"
check "pkg-config --modversion tlskit = $hversion (the header's)" \
    test "$(pkg-config --modversion tlskit)" = "$hversion"
check "pkg-config --exists 'tlskit >= 0.1'" pkg-config --exists 'tlskit >= 0.1'
read -ra pc_cflags <<<"$(pkg-config --cflags tlskit)"
read -ra pc_libs <<<"$(pkg-config --libs tlskit)"
read -ra pc_static <<<"$(pkg-config --static --libs tlskit)"
check "tlskit.pc points into the install prefix (--cflags --libs: ${pc_cflags[*]} ${pc_libs[*]})" \
    bash -c 'for a in "${@:2}"; do case $a in -I*|-L*) case $a in *"$1"*) ;; *) exit 1 ;; esac ;; esac; done' \
    _ "$prefix" "${pc_cflags[@]}" "${pc_libs[@]}"
# -l:libtlskit.a takes the archive even though libtlskit.so sits beside it.
static_libs=()
for a in "${pc_static[@]}"; do
    [[ $a == -ltlskit ]] && a=-l:libtlskit.a
    static_libs+=("$a")
done
check "cc \$(pkg-config --cflags --libs tlskit)" \
    "$cc" -std=c11 "${xflags[@]}" "${pc_cflags[@]}" "$here/consumer/main.c" \
    -o "$work/pc_shared" "${pc_libs[@]}"
check "pc_shared runs (LD_LIBRARY_PATH=${libdir#"$prefix"/})" \
    env LD_LIBRARY_PATH="$libdir" "$work/pc_shared"
check "cc \$(pkg-config --static --libs tlskit), libtlskit.a: ${static_libs[*]}" \
    "$cc" -std=c11 "${xflags[@]}" "${pc_cflags[@]}" "$here/consumer/main.c" \
    -o "$work/pc_static" "${static_libs[@]}"
check "pc_static runs without LD_LIBRARY_PATH" "$work/pc_static"
check "pc_static does not need libtlskit.so" \
    bash -c 'readelf -d "$1" >"$1.dyn" && ! grep -q "NEEDED.*libtlskit" "$1.dyn"' _ "$work/pc_static"

# The C examples' sources are installed as documentation; they must build as they are
# against the installed library (the examples test in the build tree runs them).
step "the installed examples (share/doc/tlskit/examples) build with pkg-config"
exdir=$prefix/share/doc/tlskit/examples
if [[ -d $exdir ]]; then
    for ex in "$exdir"/*.c; do
        check "cc -Werror ${ex#"$prefix"/}" \
            "$cc" -std=c11 -Wall -Wextra -Werror "${xflags[@]}" "${pc_cflags[@]}" "$ex" \
            -o "$work/example_$(basename "$ex" .c)" "${pc_libs[@]}" -pthread
    done
elif [[ -d $root/examples ]]; then
    bad "examples/ not installed to share/doc/tlskit/examples"
fi

summary
((failed == 0))
