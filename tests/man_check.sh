#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The manual pages in man/ cannot rot or drift:
#   - every page passes `mandoc -Tlint` with no message at all (style included);
#   - every TLSKIT_API function of lib/include/tlskit/tlskit.h is named (.Nm) and
#     declared (.Fn/.Fo) in some section 3 page;
#   - every long flag an app's --help defines is an .It item of that app's section 1
#     page.
#   - with --install BUILD-DIR: `cmake --install` of that build puts every page in
#     share/man/manN (GNUInstallDirs) and the certificate script in bin/ as
#     tlskit-gen-certs, which runs from there.
# Usage: man_check.sh [--install BUILD-DIR] APP=BINARY...
#   e.g. tlsserver=build/apps/tlsserver/tlsserver (an app's page is man/APP.1; the binary
#   is run with --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
mandir=$root/man
header=$root/lib/include/tlskit/tlskit.h
command -v mandoc >/dev/null || { echo "FAIL mandoc is missing (scripts/setup.sh installs it)"; exit 1; }
install_from=
if [ "${1:-}" = --install ]; then
    install_from=$2
    shift 2
fi
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

shopt -s nullglob
pages=("$mandir"/*.[0-9])
((${#pages[@]} > 0)) || { echo "FAIL no pages in $mandir"; exit 1; }

# 1. Lint: mandoc prints nothing for a clean page (-Wall includes style messages).
# mandoc looks up .Xr references in the installed manpath only: a reference to a page
# of man/ itself is fine (and one to a page that is in neither is still reported), and
# "outdated mandoc.db" is about this machine's manual database, not about the page.
for p in "${pages[@]}"; do
    out=$(mandoc -Tlint -Wall "$p" 2>&1 || true)
    out=$(printf '%s\n' "$out" | while IFS= read -r line; do
        if [[ $line =~ referenced\ manual\ not\ found:\ Xr\ ([^ ]+)\ ([0-9]) ]] &&
            [ -f "$mandir/${BASH_REMATCH[1]}.${BASH_REMATCH[2]}" ]; then
            continue
        fi
        [[ $line == *"outdated mandoc.db lacks"* ]] && continue
        [ -z "$line" ] || printf '%s\n' "$line"
    done)
    if [ -z "$out" ]; then ok; else bad "$(basename "$p"): mandoc -Tlint:"; echo "$out"; fi
done

# 2. Every public function is documented in some section 3 page.
sec3=("$mandir"/*.3)
funcs=$(grep -h 'TLSKIT_API' "$header" | grep -o 'tlskit_[a-z0-9_]*(' | tr -d '(' | sort -u)
[ -n "$funcs" ] || bad "no TLSKIT_API function found in $header"
for f in $funcs; do
    # Named in a page's NAME section (".Nm f ,") and declared in its SYNOPSIS (".Fo f"
    # or ".Fn f"); a mention in another page's text does not count.
    found=0
    for p in "${sec3[@]}"; do
        if grep -qE "^\.Nm $f( ,)?\$" "$p" && grep -qE "^\.(Fn|Fo) $f( |\$)" "$p"; then
            found=1
            break
        fi
    done
    if ((found)); then
        ok
    else
        bad "$f: no man/*.3 page names it (.Nm) and declares it (.Fn/.Fo)"
    fi
done

# 3. Every long flag of an app's --help is an item of its page's option list.
for arg in "$@"; do
    app=${arg%%=*} bin=${arg#*=}
    page=$mandir/$app.1
    [ -f "$page" ] || { bad "$app: no page man/$app.1"; continue; }
    help=$("$bin" --help 2>&1) || { bad "$app: $bin --help failed"; continue; }
    # Flags that the help defines: option lines, "  -x, --flag ARG   text".
    flags=$(printf '%s\n' "$help" | grep -oE '^ {1,8}(-[A-Za-z0-9]+, )?--[a-z0-9][a-z0-9-]*' |
        grep -oE -- '--[a-z0-9][a-z0-9-]*$' | sort -u)
    [ -n "$flags" ] || { bad "$app: no long flag found in --help"; continue; }
    for fl in $flags; do
        # Documented as an item of the options list: ".It Fl -flag ..." (or
        # ".It Fl x , Fl -flag ..."), not merely mentioned in some sentence.
        if grep -qE -- "^\.It (.* )?Fl -${fl#--}( |\$)" "$page"; then
            ok
        else
            bad "$app: $fl (in --help) is not in man/$app.1"
        fi
    done
done
# 4. Installed where man(1) finds them, with the certificate command.
if [ -n "$install_from" ]; then
    prefix=$(mktemp -d)
    trap 'rm -rf "$prefix"' EXIT
    if cmake --install "$install_from" --prefix "$prefix" >"$prefix.log" 2>&1; then
        ok
        for p in "${pages[@]}"; do
            name=$(basename "$p")
            # Section 1 pages of apps the build did not make are not installed.
            case $name in tlsserver.1 | tlsclient.1 | tlsbench.1)
                [ -x "$install_from/apps/${name%.1}/${name%.1}" ] || continue ;;
            esac
            if [ -f "$prefix/share/man/man${name##*.}/$name" ]; then
                ok
            else
                bad "cmake --install: share/man/man${name##*.}/$name is missing"
            fi
        done
        gen=$prefix/bin/tlskit-gen-certs
        if [ -x "$gen" ] && (cd "$prefix" && "$gen" -q) && [ -f "$prefix/certs/server.crt" ]; then
            ok
        else
            bad "cmake --install: bin/tlskit-gen-certs is missing or does not make ./certs"
        fi
    else
        bad "cmake --install $install_from failed:"
        cat "$prefix.log"
    fi
    rm -f "$prefix.log"
fi
echo "$pass passed, $fail failed"
((fail == 0 && pass > 0))
