#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# readme-help.sh - paste each app's --help into README.md, in the ```text block after its
# "<!-- help: APP -->" marker (the package test fails when they differ).
#
# Usage: scripts/readme-help.sh [BUILD-DIR]     (default: build/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
build=${1:-$root/build}
for app in tlsserver tlsclient tlsbench; do
    bin=$build/apps/$app/$app
    [[ -x $bin ]] || { echo "readme-help.sh: $bin: not built" >&2; exit 1; }
done
python3 - "$root/README.md" "$build" <<'PY'
import subprocess, sys
readme, build = sys.argv[1], sys.argv[2]
lines = open(readme).read().split("\n")
out, i = [], 0
while i < len(lines):
    line = lines[i]
    out.append(line)
    i += 1
    if line.startswith("<!-- help: ") and line.split()[2] in ("tlsserver", "tlsclient", "tlsbench"):
        app = line.split()[2]
        while i < len(lines) and not lines[i].startswith("```"):
            out.append(lines[i]); i += 1
        out.append(lines[i]); i += 1          # the opening fence
        while i < len(lines) and lines[i] != "```":
            i += 1                            # the old text
        text = subprocess.run([f"{build}/apps/{app}/{app}", "--help"], capture_output=True,
                              text=True, check=True).stdout
        out.extend(text.rstrip("\n").split("\n"))
open(readme, "w").write("\n".join(out))
PY
