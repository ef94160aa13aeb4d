#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# setup.sh - install the Debian packages that building and testing tlskit needs.
#
# Idempotent and quiet: asks dpkg what is missing and only then runs apt-get (update,
# then install). Uses sudo when not run as root. On a system without dpkg/apt-get it
# prints the list and leaves the installing to you.
#
# Usage: scripts/setup.sh [--bench] [--list]
#   --bench  also the packages scripts/bench.sh uses (nginx-light, gnuplot-nox,
#            nghttp2-client, valgrind, stunnel4, haproxy, libnginx-mod-stream, the
#            mimalloc and jemalloc -dev packages); their system services are kept from
#            starting
#   --list   print the required packages and exit
# Environment: TLSKIT_SKIP_SETUP=1 skips everything (for machines you manage yourself).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
prog=setup.sh

# What each package is for:
#   build-essential   gcc, make, libc headers, binutils (nm/readelf for the package test), g++
#   cmake, pkg-config the build and the install checks
#   libssl-dev        OpenSSL 3: the TLS implementation under tlskit
#   libcriterion-dev  the unit test framework
#   openssl           the CLI: scripts/gen-certs.sh, and the interop peer in tests
#   curl              an independent HTTPS client for tlsserver's --mode http tests
#   gnutls-bin        gnutls-cli / gnutls-serv: a second TLS stack in the interop matrix
#   python3           Python's ssl module in the interop matrix, its driver script, and
#                     bench.sh's report
#   python3-jsonschema  test_check: tlsclient --json output validated against
#                     schemas/tlsclient-check.schema.json
#   sslscan, nmap     the scanner checks (no protocol below TLS 1.2, every cipher grade A)
#   tshark            the key log test: capture a loopback session and decrypt it with the
#                     key log (capturing needs root or CAP_NET_RAW; the debconf question
#                     about non-root capture keeps its default, no, non-interactively)
#   haproxy           test_proxy and test_cluster: the real PROXY protocol sender (mode tcp,
#                     send-proxy / send-proxy-v2) in front of tlsserver --proxy-protocol,
#                     and scripts/cluster-demo.sh's load balancer
#   systemd           systemd-socket-activate: tlsserver's socket activation test (it runs
#                     without systemd as PID 1)
#   postgresql, dovecot-imapd, dovecot-pop3d, postfix
#                     real STARTTLS servers for test_starttls (tlsclient --starttls
#                     postgres/imap/pop3/smtp), each started by the test on 127.0.0.1 with
#                     its own config; their system services are not started (policy-rc.d
#                     in containers), nor needed
#   mandoc            man_check (tests/man_check.sh): mandoc -Tlint of the pages in man/
packages=(build-essential cmake pkg-config libssl-dev libcriterion-dev openssl curl
          gnutls-bin python3 python3-jsonschema sslscan nmap tshark haproxy systemd
          postgresql dovecot-imapd dovecot-pop3d postfix mandoc)
# For scripts/bench.sh only:
#   nginx-light       the reference server
#   gnuplot-nox       chart.png
#   nghttp2-client    h2load, the reference client for the client-cost figure
#   valgrind          --callgrind (instructions per handshake)
#   stunnel4, haproxy, libnginx-mod-stream
#                     --terminators: the TLS terminators tlsserver --forward is set against
#                     (nginx-light's stream module comes as a separate package)
#   libmimalloc-dev, libjemalloc-dev
#                     the allocators the memory figures were measured with (CMake
#                     -DTLSKIT_APP_ALLOCATOR=mimalloc|jemalloc links one into the programs)
bench_packages=(nginx-light gnuplot-nox nghttp2-client valgrind stunnel4 haproxy
                libnginx-mod-stream libmimalloc-dev libjemalloc-dev)

list=0
while (($#)); do
    case $1 in
    --bench) packages+=("${bench_packages[@]}") ;;
    --list) list=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
    esac
    shift
done
((list)) && { printf '%s\n' "${packages[@]}"; exit 0; }

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
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
    sudo=(sudo)
fi

# Debian starts a daemon's service when its package is installed; the nginx (haproxy,
# stunnel) that bench.sh runs is its own process on a free port, and a system one would
# hold port 80 and share the cores being measured. A policy-rc.d that exits 101 forbids the start; one that is
# already there is the administrator's and stays untouched.
prc=/usr/sbin/policy-rc.d
if [[ " ${missing[*]} " =~ \ (nginx-light|haproxy|stunnel4)\  && ! -e $prc ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$prc" >/dev/null
    "${sudo[@]}" chmod 755 "$prc"
    trap '"${sudo[@]}" rm -f "$prc"' EXIT
fi

printf '%s: installing %s\n' "$prog" "${missing[*]}"
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq)
"${apt[@]}" update </dev/null
"${apt[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null
printf '%s: done\n' "$prog"
