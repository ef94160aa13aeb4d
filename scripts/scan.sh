#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scan.sh - run testssl.sh against a local tlsserver and summarise its findings (issue:
# hostile input). The long companion of the scan_sslscan and scan_nmap ctests: testssl.sh
# takes minutes, so it is not part of ctest.
#
# Builds tlsserver (Release, no sanitizers) into build-scan/, starts it on 127.0.0.1 with
# default settings, once with the ECDSA certificate and once with the RSA one, and runs
#   testssl --quiet --color 0 --nodns none --warnings off --jsonfile ... 127.0.0.1:PORT
# (no DNS, no phoning out for OCSP/CRLs: loopback only). Prints every finding of severity
# LOW or above, and the counts by severity.
#
# Usage: scripts/scan.sh [--cert ecdsa|rsa]... [--keep]
# Environment: BUILD_DIR (default build-scan/), JOBS, TESTSSL (default: testssl or
#              testssl.sh from PATH; Debian package testssl.sh).
# Exit status: 0 when no finding about the server is MEDIUM, HIGH or CRITICAL; 1 otherwise
# or on error. LOW findings are printed but do not fail (testssl flags e.g. any CBC or
# non-PFS cipher as LOW; tlskit offers none, so a LOW finding deserves a look). Findings
# about the generated test certificate itself (no CRL/OCSP URI, no CT, no CAA record) are
# shown and not counted.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
prog=scan.sh
build=${BUILD_DIR:-$root/build-scan}
kinds=()
keep=0
while (($#)); do
    case $1 in
    --cert) [[ ${2-} == ecdsa || ${2-} == rsa ]] || usage_error "--cert ecdsa|rsa"
        kinds+=("$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
    esac
done
((${#kinds[@]})) || kinds=(ecdsa rsa)

testssl=${TESTSSL:-$(command -v testssl || command -v testssl.sh || true)}
[[ -n $testssl ]] || die "testssl not found: install the Debian package testssl.sh"
command -v python3 >/dev/null || die "python3 not found (Debian package python3)"

say "building tlsserver (Release) into $build"
build_apps "$build" Release tlsserver
server=$build/apps/tlsserver/tlsserver
certs=$build/certs
"$root/scripts/gen-certs.sh" --out "$certs" --negative --force -q

work=$(mktemp -d "${TMPDIR:-/tmp}/tlskit-scan.XXXXXX")
srv_pid=
cleanup() {
    [[ -n $srv_pid ]] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
    ((keep)) || rm -rf "$work"
}
trap cleanup EXIT

worst=0
for kind in "${kinds[@]}"; do
    if [[ $kind == ecdsa ]]; then crt=server.crt key=server.key; else crt=rsa.crt key=rsa.key; fi
    start_tlsserver "$work/$kind.out" "$work/$kind.err" \
        "$server" --bind 127.0.0.1 --port 0 -q --cert "$certs/$crt" --key "$certs/$key"
    wait_listen "$work/$kind.out" "$srv_pid" 10 || { cat "$work/$kind.err" >&2; exit 1; }
    addr=$srv_addr
    say "testssl against tlsserver ($kind certificate) on $addr (takes a few minutes)"
    rc=0
    timeout 1800 "$testssl" --quiet --color 0 --nodns none --warnings off \
        --add-ca "$certs/ca.crt" --jsonfile "$work/$kind.json" "$addr" \
        >"$work/$kind.log" 2>&1 || rc=$?
    kill -TERM "$srv_pid"
    src=0
    wait "$srv_pid" || src=$?
    srv_pid=
    if [[ ! -s $work/$kind.json ]]; then
        note "testssl produced no results (exit $rc):"
        tail -30 "$work/$kind.log" >&2
        exit 1
    fi
    ((src == 0)) || { note "tlsserver exited $src after the scan"; worst=1; }
    grep -q 'runtime error\|AddressSanitizer' "$work/$kind.err" && worst=1
    python3 - "$work/$kind.json" "$kind" <<'EOF' || worst=1
import collections, json, sys
path, kind = sys.argv[1], sys.argv[2]
order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "INFO", "OK", "DEBUG"]
findings = json.load(open(path))
if isinstance(findings, dict):  # --jsonfile-pretty layout
    findings = [f for s in findings.get("scanResult", []) for v in s.values()
                if isinstance(v, list) for f in v]
count = collections.Counter(f.get("severity", "?") for f in findings)
print("  %s: %s" % (kind, ", ".join("%s %d" % (s, count[s]) for s in order if count[s])))
# Properties of the generated test certificate, not of tlskit: a local CA has no CRL or
# OCSP responder, no CT logs, no CAA record. Shown, never failing.
CERT_ONLY = ("cert_revocation", "cert_crlDistributionPoints", "cert_ocspURL", "OCSP_stapling",
             "certificate_transparency", "DNS_CAArecord", "cert_mustStapleExtension")
# testssl's own environment, not the server.
TOOL_ONLY = ("engine_problem", "service", "scanProblem")
bad = 0
for f in findings:
    sev, fid = f.get("severity", "?"), f.get("id", "?")
    if sev in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN"):
        why = (" (test certificate: not counted)" if fid in CERT_ONLY else
               " (testssl environment: not counted)" if fid in TOOL_ONLY else "")
        print("    %-8s %-28s %s%s" % (sev, fid, f.get("finding", ""), why))
        bad |= sev in ("CRITICAL", "HIGH", "MEDIUM") and not why
# The headline results, whatever their severity.
for f in findings:
    if f.get("id") in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3", "PFS",
                       "PFS_ECDHE_curves", "DH_groups", "cipher_order", "cipherorder_TLSv1_2",
                       "cipherorder_TLSv1_3", "cipherlist_LOW", "cipherlist_3DES_IDEA",
                       "cipherlist_AVERAGE", "cert_chain_of_trust", "cert_keySize",
                       "cert_signatureAlgorithm", "TLS_session_ticket", "fallback_SCSV",
                       "secure_renego", "secure_client_renego", "heartbleed", "CCS", "ROBOT",
                       "CRIME_TLS", "SWEET32", "LUCKY13", "BEAST", "RC4", "LOGJAM", "FREAK",
                       "DROWN", "POODLE_SSL", "overall_grade"):
        print("    %-28s %-8s %s" % (f["id"], f.get("severity", "?"), f.get("finding", "")))
sims = [f for f in findings if f.get("id", "").startswith("clientsimulation-")]
none = [f["id"][len("clientsimulation-"):] for f in sims if f.get("finding") == "No connection"]
print("    client simulations: %d of %d connect%s" % (len(sims) - len(none), len(sims),
      "; no connection: " + ", ".join(none) if none else ""))
sys.exit(1 if bad else 0)
EOF
done
if ((worst)); then
    say "FAIL: findings of MEDIUM severity or above (or the server misbehaved)"
    ((keep)) && say "logs in $work"
    exit 1
fi
say "PASS: no finding above LOW"
((keep)) && say "logs in $work"
exit 0
