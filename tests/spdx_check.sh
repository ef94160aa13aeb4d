#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every source file says its licence in its first lines (an SPDX identifier), and the
# licence text is there. Files a generator or a fuzzer wrote (corpora) are not source.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"
[ -f LICENSE ] || { echo "FAIL LICENSE is missing"; echo "0 passed, 1 failed"; exit 1; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    list() { git ls-files; }
else
    list() { find . -type f -not -path './.git/*' -not -path './build*' | sed 's|^\./||'; }
fi
pass=0 fail=0
while IFS= read -r f; do
    case $f in
    */corpus/*) continue ;;
    *.c | *.h | *.sh | *.py | *.cmake | *.in | */CMakeLists.txt | CMakeLists.txt | .ci/run) ;;
    *) continue ;;
    esac
    [ -f "$f" ] || continue
    if head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT'; then
        pass=$((pass + 1))
    else
        echo "FAIL $f: no 'SPDX-License-Identifier: MIT' in its first three lines"
        fail=$((fail + 1))
    fi
done < <(list)
echo "$pass passed, $fail failed"
((fail == 0 && pass > 0))
