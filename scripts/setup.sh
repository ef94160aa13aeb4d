#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# setup.sh - install the Debian packages that building and testing tlskit needs.
#
# Idempotent and quiet: asks dpkg what is missing and only then runs apt-get (update,
# then install). Uses sudo when not run as root. On a system without dpkg/apt-get it
# prints the list and leaves the installing to you.
#
# Usage: scripts/setup.sh [--list]
#   --list   print the required packages and exit
# Environment: TLSKIT_SKIP_SETUP=1 skips everything (for machines you manage yourself).
set -euo pipefail

prog=setup.sh

# What each package is for:
#   build-essential   gcc, make, libc headers, binutils (nm/readelf for the package test), g++
#   cmake, pkg-config the build and the install checks
#   libssl-dev        OpenSSL 3: the TLS implementation under tlskit
#   libcriterion-dev  the unit test framework
#   openssl           the CLI: scripts/gen-certs.sh, and the interop peer in tests
#   curl              an independent HTTPS client for tlsserver's --mode http tests
#   gnutls-bin        gnutls-cli / gnutls-serv: a second TLS stack in the interop matrix
#   python3           Python's ssl module in the interop matrix, and its driver script
#   sslscan, nmap     the scanner checks (no protocol below TLS 1.2, every cipher grade A)
packages=(build-essential cmake pkg-config libssl-dev libcriterion-dev openssl curl
          gnutls-bin python3 sslscan nmap)

case ${1-} in
--list) printf '%s\n' "${packages[@]}"; exit 0 ;;
'') ;;
-h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
*) printf '%s: unknown argument: %s\n' "$prog" "$1" >&2; exit 2 ;;
esac

[[ ${TLSKIT_SKIP_SETUP:-0} == 1 ]] && exit 0

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    printf '%s: not a Debian-like system; make sure these (or their equivalents) are installed:\n  %s\n' \
        "$prog" "${packages[*]}" >&2
    exit 0
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$p")
done
((${#missing[@]} > 0)) || exit 0

sudo=()
if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 ||
        { printf '%s: need root or sudo to install: %s\n' "$prog" "${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi

printf '%s: installing %s\n' "$prog" "${missing[*]}"
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq)
"${apt[@]}" update </dev/null
"${apt[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null
printf '%s: done\n' "$prog"
