#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Scanner checks: run sslscan or nmap's ssl-enum-ciphers against a running tlsserver
(default settings; once with the ECDSA certificate, once with the RSA one) and assert:

  both     no protocol below TLS 1.2 offered; TLS 1.2 and TLS 1.3 offered
  sslscan  every accepted cipher forward-secret (ECDHE/DHE, or TLS 1.3) and AEAD (GCM,
           CHACHA20-POLY1305, CCM) with >= 128 bits, none rated weak/medium/null/anonymous;
           no insecure renegotiation; not vulnerable to Heartbleed; TLS_FALLBACK_SCSV
           honoured; no TLS compression; certificate key >= 2048 bits RSA / P-256 EC,
           signature not MD5/SHA-1
  nmap     every cipher graded A, "least strength: A", no warnings, only NULL compression

Usage: scan_check.py sslscan|nmap --server BIN --certs DIR [-v]
A missing scanner is a failure naming its Debian package. Last line: "N passed, M failed".
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

PACKAGES = {"sslscan": "sslscan", "nmap": "nmap"}
CERTS = {"ECDSA": ("server.crt", "server.key"), "RSA": ("rsa.crt", "rsa.key")}
TIMEOUT = 120


class Checks:
    def __init__(self, label):
        self.label = label
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print("  ok   %s: %s" % (self.label, what))
        else:
            self.failed += 1
            print("  FAIL %s: %s%s" % (self.label, what, (" -- " + detail) if detail else ""))


def start_server(server, certs, kind):
    crt, key = CERTS[kind]
    p = subprocess.Popen([server, "--bind", "127.0.0.1", "--port", "0",
                          "--cert", os.path.join(certs, crt), "--key", os.path.join(certs, key),
                          "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()  # the contract's first line, flushed
    m = re.match(r"tlsserver: listening on (\S+?)(,|\s*$)", line)
    if not m:
        p.kill()
        raise RuntimeError("tlsserver did not start: %r %s" % (line, p.stderr.read()))
    return p, int(m.group(1).rsplit(":", 1)[1])


def stop_server(p, c):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = -1
    err = p.stderr.read()
    c.check(rc == 0, "tlsserver exits 0 on SIGTERM after the scan", "exit %d" % rc)
    # The scanner's probes (SSLv3 hellos, unsupported ciphers) must be refused cleanly,
    # never crash the server: any sanitizer report or abort shows up here.
    c.check("runtime error" not in err and "AddressSanitizer" not in err,
            "tlsserver stayed clean under the scan", err[-800:])


AEAD = re.compile(r"GCM|CHACHA20|POLY1305|CCM")


def check_sslscan(port, c, verbose):
    with tempfile.TemporaryDirectory() as d:
        xml_path = os.path.join(d, "scan.xml")
        r = subprocess.run(["sslscan", "--no-colour", "--xml=" + xml_path, "127.0.0.1:%d" % port],
                           capture_output=True, text=True, timeout=TIMEOUT)
        text = r.stdout
        if verbose:
            print(text)
        c.check(r.returncode == 0 and os.path.exists(xml_path), "sslscan ran",
                "exit %d: %s" % (r.returncode, r.stderr[-500:]))
        if not os.path.exists(xml_path):
            return
        root = ET.parse(xml_path).getroot()
    test = root.find("ssltest")
    protos = {(p.get("type"), p.get("version")): p.get("enabled") == "1"
              for p in test.findall("protocol")}
    below = [("%s %s" % k) for k, on in protos.items()
             if on and (k[0] == "ssl" or k[1] in ("1.0", "1.1"))]
    c.check(not below, "no protocol below TLS 1.2 offered", "offered: %s" % below)
    c.check(protos.get(("tls", "1.2")) and protos.get(("tls", "1.3")),
            "TLS 1.2 and TLS 1.3 offered", str(protos))

    ciphers = test.findall("cipher")
    c.check(len(ciphers) > 0, "ciphers found (%d)" % len(ciphers))
    for ci in ciphers:
        name, ver, bits = ci.get("cipher"), ci.get("sslversion"), int(ci.get("bits", "0"))
        fs = ver == "TLSv1.3" or name.startswith(("ECDHE-", "DHE-"))
        ok = fs and AEAD.search(name) and bits >= 128 and ci.get("strength") not in (
            "weak", "medium", "null", "anonymous")
        c.check(bool(ok), "%s %s (%d bits, %s): forward secret, AEAD, >= 128 bits"
                % (ver, name, bits, ci.get("strength")))

    reneg = test.find("renegotiation")
    c.check(reneg is None or reneg.get("supported") == "0" or reneg.get("secure") == "1",
            "no insecure renegotiation",
            reneg is not None and str(reneg.attrib))
    hb = [h.get("sslversion") for h in test.findall("heartbleed") if h.get("vulnerable") != "0"]
    c.check(not hb, "not vulnerable to Heartbleed", str(hb))
    c.check("Server supports TLS Fallback SCSV" in text, "TLS_FALLBACK_SCSV honoured",
            re.search(r"TLS Fallback SCSV:\n(.*)", text) and
            re.search(r"TLS Fallback SCSV:\n(.*)", text).group(1))
    comp = test.find("compression")
    c.check(comp is None or comp.get("supported") == "0", "no TLS compression",
            comp is not None and str(comp.attrib))
    pk = test.find("certificates/certificate/pk")
    sig = test.findtext("certificates/certificate/signature-algorithm") or ""
    if pk is not None:
        bits = int(pk.get("bits", "0"))
        # sslscan gives the modulus size for RSA and the security strength for EC
        # (128 for P-256).
        need = 2048 if pk.get("type") == "RSA" else 128
        c.check(bits >= need, "certificate key %s %d bits (>= %d)" % (pk.get("type"), bits, need))
    c.check(not re.search(r"md5|sha1With|sha1$", sig, re.I), "certificate signature %s" % sig)


def check_nmap(port, c, verbose):
    with tempfile.TemporaryDirectory() as d:
        xml_path = os.path.join(d, "nmap.xml")
        # -Pn -n: no ping, no DNS (loopback only); -sT: a plain connect() scan.
        r = subprocess.run(["nmap", "-Pn", "-n", "-sT", "-p", str(port), "--script",
                            "ssl-enum-ciphers", "-oX", xml_path, "127.0.0.1"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        if verbose:
            print(r.stdout)
        c.check(r.returncode == 0 and os.path.exists(xml_path), "nmap ran",
                "exit %d: %s" % (r.returncode, r.stderr[-500:]))
        if not os.path.exists(xml_path):
            return
        root = ET.parse(xml_path).getroot()
    script = root.find(".//script[@id='ssl-enum-ciphers']")
    c.check(script is not None, "ssl-enum-ciphers produced a result", r.stdout[-800:])
    if script is None:
        return
    versions = {t.get("key"): t for t in script.findall("table")}
    below = [v for v in versions if v not in ("TLSv1.2", "TLSv1.3")]
    c.check(not below, "no protocol below TLS 1.2 offered", "offered: %s" % below)
    c.check("TLSv1.2" in versions and "TLSv1.3" in versions, "TLS 1.2 and TLS 1.3 offered",
            str(list(versions)))
    n = 0
    for v, t in versions.items():
        for ci in t.findall("table[@key='ciphers']/table"):
            n += 1
            name = ci.findtext("elem[@key='name']")
            grade = ci.findtext("elem[@key='strength']")
            c.check(grade == "A", "%s %s graded %s" % (v, name, grade))
        comps = [e.text for e in t.findall("table[@key='compressors']/elem")]
        c.check(all(x == "NULL" for x in comps), "%s compressors: %s" % (v, comps or "none"))
        warns = [e.text for e in t.findall("table[@key='warnings']/elem")]
        c.check(not warns, "%s: no warnings" % v, str(warns))
    c.check(n > 0, "ciphers graded (%d)" % n)
    least = script.findtext("elem[@key='least strength']")
    c.check(least == "A", "least strength: %s" % least)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scanner", choices=sorted(PACKAGES))
    ap.add_argument("--server", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    if shutil.which(args.scanner) is None:
        print("scan_%s: FAIL: %s not found: install the Debian package %s "
              "(apt-get install -y %s, or scripts/setup.sh)"
              % (args.scanner, args.scanner, PACKAGES[args.scanner], PACKAGES[args.scanner]))
        print("0 passed, 1 failed")
        return 1
    total_pass = total_fail = 0
    for kind in ("ECDSA", "RSA"):
        c = Checks("%s/%s" % (args.scanner, kind))
        print("%s against tlsserver with the %s certificate:" % (args.scanner, kind))
        try:
            p, port = start_server(args.server, args.certs, kind)
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            c.check(False, "tlsserver started", str(e))
        else:
            try:
                (check_sslscan if args.scanner == "sslscan" else check_nmap)(port, c, args.verbose)
            except Exception as e:  # noqa: BLE001
                c.check(False, "scan completed", "%s: %s" % (type(e).__name__, e))
            finally:
                stop_server(p, c)
        total_pass += c.passed
        total_fail += c.failed
    print("%d passed, %d failed" % (total_pass, total_fail))
    return 0 if total_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
