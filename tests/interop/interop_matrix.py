#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Interop matrix: tlsserver and tlsclient against independent TLS implementations.

Every cell is a real handshake over 127.0.0.1 and one application exchange (an echo, or
an HTTP GET for curl against `tlsserver --mode http`), for

    peers   openssl s_client -> tlsserver      tlsclient -> openssl s_server
            gnutls-cli       -> tlsserver      tlsclient -> gnutls-serv
            curl             -> tlsserver --mode http
            python ssl       -> tlsserver      tlsclient -> python ssl server
    TLS     1.2 and 1.3 (the peer is limited to the version; tlskit keeps its defaults)
    cert    ECDSA P-256 (server.crt) and RSA 2048 (rsa.crt)
    mTLS    without, and with a client certificate (client.crt) required and verified

A cell passes when both ends report success, the exchanged bytes are right, both ends
report the expected protocol version, the TLS 1.2 cipher matches the certificate type,
and (mTLS) the server saw and verified the client certificate. The tlskit end must also
end cleanly: tlsclient exits 0, tlsserver logs `ok` for the connection and exits 0 on
SIGTERM.

A missing peer program is a failure naming the Debian package to install, never a skip.
Servers run on port 0 (tlsserver, openssl s_server: the port is read back) or on a free
port found by binding port 0 and probed by connecting (gnutls-serv, which cannot be told
the address either: an LD_PRELOAD shim turns its wildcard bind into loopback).

Usage: interop_matrix.py --server BIN --client BIN --certs DIR [--shim SO]
                         [--markdown FILE] [--jobs N] [--only REGEX] [-v]
The last line printed is "N passed, M failed".
"""
import argparse
import concurrent.futures
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

STEP_TIMEOUT = 30.0  # any single wait; a cell never takes longer than a few of these

PEER_PACKAGES = {
    "openssl": "openssl",
    "gnutls-cli": "gnutls-bin",
    "gnutls-serv": "gnutls-bin",
    "curl": "curl",
}

CERTS = {"ECDSA": ("server.crt", "server.key"), "RSA": ("rsa.crt", "rsa.key")}
VERSIONS = {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}
GNUTLS_PRIO = {"1.2": "NORMAL:-VERS-ALL:+VERS-TLS1.2", "1.3": "NORMAL:-VERS-ALL:+VERS-TLS1.3"}


class CellError(Exception):
    pass


class Proc:
    """A child process with stdout/stderr collected by reader threads."""

    def __init__(self, argv, env=None, stdin=True):
        self.argv = argv
        self.p = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self.buf = {1: bytearray(), 2: bytearray()}
        self.cond = threading.Condition()
        self.eof = {1: False, 2: False}
        self.threads = [
            threading.Thread(target=self._reader, args=(1, self.p.stdout), daemon=True),
            threading.Thread(target=self._reader, args=(2, self.p.stderr), daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _reader(self, n, f):
        while True:
            data = f.read1(65536) if hasattr(f, "read1") else f.read(65536)
            with self.cond:
                if not data:
                    self.eof[n] = True
                    self.cond.notify_all()
                    return
                self.buf[n] += data
                self.cond.notify_all()

    def text(self, n):
        with self.cond:
            return self.buf[n].decode("utf-8", "replace")

    def wait_for(self, n, pattern, timeout=STEP_TIMEOUT):
        """Wait until regex pattern matches stream n; returns the match or None."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = rx.search(self.buf[n].decode("utf-8", "replace"))
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.eof[n] and self.p.poll() is not None):
                    return None
                self.cond.wait(min(left, 0.2))

    def feed(self, data, close=False):
        try:
            if data:
                self.p.stdin.write(data)
                self.p.stdin.flush()
            if close:
                self.p.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    def wait(self, timeout=STEP_TIMEOUT):
        """Exit code; kills the process group and raises CellError on timeout."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CellError("%s did not exit within %.0f s" % (os.path.basename(self.argv[0]), timeout))
        for t in self.threads:
            t.join(5)
        return rc

    def signal(self, sig):
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.p.wait(10)

    def output(self):
        return "stdout: %r\nstderr: %r" % (self.text(1)[-1500:], self.text(2)[-1500:])


class Ctx:
    def __init__(self, args):
        self.server = args.server
        self.client = args.client
        self.certs = args.certs
        self.shim = args.shim
        self.verbose = args.verbose

    def cert(self, name):
        return os.path.join(self.certs, name)

    def pair(self, kind):
        crt, key = CERTS[kind]
        return self.cert(crt), self.cert(key)


# ---- the tlskit ends -------------------------------------------------------------------

class TlsServer:
    """tlsserver on 127.0.0.1, port 0; reads the port from the first stdout line."""

    def __init__(self, ctx, kind, mtls, mode="echo"):
        crt, key = ctx.pair(kind)
        argv = [ctx.server, "--bind", "127.0.0.1", "--port", "0", "--cert", crt, "--key", key,
                "--mode", mode, "-v"]
        if mtls:
            argv += ["--ca", ctx.cert("ca.crt"), "--verify-client"]
        self.mtls = mtls
        self.proc = Proc(argv, stdin=False)
        m = self.proc.wait_for(1, r"^tlsserver: listening on (\S+?)(,|\s*$)")
        if not m:
            self.proc.kill()
            raise CellError("tlsserver printed no listening line\n" + self.proc.output())
        self.port = int(m.group(1).rsplit(":", 1)[1])

    def conn_line(self):
        """(proto, cipher, end) from the connection's log line."""
        m = self.proc.wait_for(2, r"^tlsserver: conn 127\.0\.0\.1:\d+ proto=(\S+) cipher=(\S+) "
                                  r"alpn=\S+ in=\d+ out=\d+ time=\S+ (ok|error=.*)$")
        if not m:
            raise CellError("tlsserver logged no connection line\n" + self.proc.output())
        return m.group(1), m.group(2), m.group(3)

    def check(self, want_proto):
        proto, cipher, end = self.conn_line()
        if proto != want_proto:
            raise CellError("tlsserver negotiated %s, expected %s" % (proto, want_proto))
        if end != "ok":
            raise CellError("tlsserver: connection did not end cleanly: %s" % end)
        if self.mtls:
            hs = self.proc.wait_for(2, r'^tlsserver: handshake .* client-cert="([^"]*)" .*verify="([^"]*)"')
            if not hs or "tlskit-client" not in hs.group(1) or hs.group(2) != "ok":
                raise CellError("tlsserver did not verify the client certificate\n" + self.proc.output())
        return proto, cipher

    def stop(self):
        self.proc.signal(signal.SIGTERM)
        rc = self.proc.wait()
        if rc != 0:
            raise CellError("tlsserver exited %d after SIGTERM\n%s" % (rc, self.proc.output()))


def run_tlsclient(ctx, port, mtls, payload):
    """tlsclient -v to 127.0.0.1:port (name checked: localhost). Returns (proto, cipher, out)."""
    argv = [ctx.client, "-v", "--ca", ctx.cert("ca.crt"), "--servername", "localhost",
            "--timeout", "20"]
    if mtls:
        argv += ["--cert", ctx.cert("client.crt"), "--key", ctx.cert("client.key")]
    argv += ["127.0.0.1", str(port)]
    p = Proc(argv)
    p.feed(payload, close=True)
    rc = p.wait()
    if rc != 0:
        raise CellError("tlsclient exited %d\n%s" % (rc, p.output()))
    m = re.search(r"^tlsclient: protocol: (\S+), cipher: (\S+),", p.text(2), re.M)
    if not m:
        raise CellError("tlsclient -v printed no protocol line\n" + p.output())
    if "tlsclient: verify result: ok" not in p.text(2):
        raise CellError("tlsclient did not report a verified server\n" + p.output())
    return m.group(1), m.group(2), p.buf[1].decode("utf-8", "replace")


# ---- helpers ------------------------------------------------------------------------------

def free_port():
    """A port free on both 127.0.0.1 and ::1 right now (the caller retries on a race)."""
    for _ in range(50):
        s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s4.bind(("127.0.0.1", 0))
        port = s4.getsockname()[1]
        try:
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                s6.bind(("::1", port))
            finally:
                s6.close()
        except OSError:
            s4.close()
            continue
        s4.close()
        return port
    raise CellError("no free port found")


def wait_listening(proc, port, timeout=STEP_TIMEOUT):
    """Poll connect() to 127.0.0.1:port until it succeeds; False if proc exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def check_cipher(kind, proto, cipher):
    """TLS 1.2 suites name the certificate's key type."""
    if proto == "TLSv1.2" and kind not in cipher:
        raise CellError("TLS 1.2 cipher %s does not match the %s certificate" % (cipher, kind))


def gnutls_version(text):
    m = re.findall(r"\((TLS1\.[0-3])-X\.509\)", text)
    return ("TLSv" + m[-1][3:]) if m else None


# ---- cells: peer clients against tlsserver ------------------------------------------------

PAYLOAD = b"hello tlskit interop\n"


def cell_openssl_client(ctx, ver, kind, mtls):
    srv = TlsServer(ctx, kind, mtls)
    try:
        argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.port, "-brief",
                "-no_ign_eof", "-CAfile", ctx.cert("ca.crt"), "-verify_return_error",
                "-verify_hostname", "localhost", "-servername", "localhost",
                "-tls1_2" if ver == "1.2" else "-tls1_3"]
        if mtls:
            argv += ["-cert", ctx.cert("client.crt"), "-key", ctx.cert("client.key")]
        p = Proc(argv)
        p.feed(PAYLOAD)
        got = p.wait_for(1, re.escape(PAYLOAD.decode()))
        p.feed(b"", close=True)  # end of stdin: s_client sends close_notify and leaves
        rc = p.wait()
        if rc != 0 or not got:
            raise CellError("s_client exit %d, echo %s\n%s" % (rc, "ok" if got else "missing", p.output()))
        m = re.search(r"^Protocol version: (\S+)", p.text(2), re.M)
        c = re.search(r"^Ciphersuite: (\S+)", p.text(2), re.M)
        if not m or m.group(1) != VERSIONS[ver]:
            raise CellError("s_client negotiated %s\n%s" % (m and m.group(1), p.output()))
        sig = re.search(r"^(?:Peer )?[Ss]ignature type: (\S+)", p.text(2), re.M)
        if sig and not sig.group(1).startswith("ECDSA" if kind == "ECDSA" else "RSA"):
            raise CellError("s_client saw a %s signature from the %s certificate" % (sig.group(1), kind))
        proto, cipher = srv.check(VERSIONS[ver])
        check_cipher(kind, proto, c.group(1) if c else cipher)
        return proto, cipher
    finally:
        srv.stop()


def cell_gnutls_client(ctx, ver, kind, mtls):
    srv = TlsServer(ctx, kind, mtls)
    try:
        argv = ["gnutls-cli", "--x509cafile", ctx.cert("ca.crt"), "-p", str(srv.port),
                "--priority", GNUTLS_PRIO[ver], "--sni-hostname", "localhost",
                "--verify-hostname", "localhost"]
        if mtls:
            argv += ["--x509certfile", ctx.cert("client.crt"), "--x509keyfile", ctx.cert("client.key")]
        argv.append("127.0.0.1")
        p = Proc(argv)
        p.feed(PAYLOAD)
        got = p.wait_for(1, "^" + re.escape(PAYLOAD.decode()))
        p.feed(b"", close=True)  # EOF: gnutls-cli sends close_notify (bye) and exits
        rc = p.wait()
        if rc != 0 or not got:
            raise CellError("gnutls-cli exit %d, echo %s\n%s" % (rc, "ok" if got else "missing", p.output()))
        v = gnutls_version(p.text(1))
        if v != VERSIONS[ver]:
            raise CellError("gnutls-cli negotiated %s\n%s" % (v, p.output()))
        desc = re.findall(r"- Description: (.*)", p.text(1))[-1]
        if ("ECDSA" in desc) != (kind == "ECDSA"):
            raise CellError("gnutls-cli: %s for the %s certificate" % (desc, kind))
        proto, cipher = srv.check(VERSIONS[ver])
        check_cipher(kind, proto, cipher)
        return proto, cipher
    finally:
        srv.stop()


def cell_curl(ctx, ver, kind, mtls):
    srv = TlsServer(ctx, kind, mtls, mode="http")
    try:
        argv = ["curl", "-sS", "-v", "--max-time", "20", "--cacert", ctx.cert("ca.crt"),
                "--resolve", "localhost:%d:127.0.0.1" % srv.port,
                "--tlsv" + ver, "--tls-max", ver, "-o", "-", "-w", "\n@@%{http_code} %{size_download}\n",
                "https://localhost:%d/" % srv.port]
        if mtls:
            argv += ["--cert", ctx.cert("client.crt"), "--key", ctx.cert("client.key")]
        p = Proc(argv, stdin=False)
        rc = p.wait()
        m = re.search(r"^@@(\d+) (\d+)$", p.text(1), re.M)
        if rc != 0 or not m or m.group(1) != "200" or int(m.group(2)) <= 0:
            raise CellError("curl exit %d, status %s\n%s" % (rc, m and m.group(1), p.output()))
        v = re.search(r"SSL connection using (\S+) / (\S+)", p.text(2))
        if not v or v.group(1) != VERSIONS[ver]:
            raise CellError("curl negotiated %s\n%s" % (v and v.group(1), p.output()))
        proto, cipher = srv.check(VERSIONS[ver])
        check_cipher(kind, proto, v.group(2))
        return proto, cipher
    finally:
        srv.stop()


def python_client_ctx(ctx, ver, mtls):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(ctx.cert("ca.crt"))
    c.minimum_version = c.maximum_version = (
        ssl.TLSVersion.TLSv1_2 if ver == "1.2" else ssl.TLSVersion.TLSv1_3)
    if mtls:
        c.load_cert_chain(ctx.cert("client.crt"), ctx.cert("client.key"))
    return c


def cell_python_client(ctx, ver, kind, mtls):
    srv = TlsServer(ctx, kind, mtls)
    try:
        c = python_client_ctx(ctx, ver, mtls)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=STEP_TIMEOUT) as raw:
            with c.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(PAYLOAD)
                got = b""
                while len(got) < len(PAYLOAD):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                if got != PAYLOAD:
                    raise CellError("python client: echo %r" % got)
                pyver, pycipher = s.version(), s.cipher()[0]
                s.unwrap()  # close_notify, and wait for the server's
        if pyver != VERSIONS[ver]:
            raise CellError("python client negotiated %s" % pyver)
        proto, cipher = srv.check(VERSIONS[ver])
        check_cipher(kind, proto, pycipher)
        return proto, cipher
    finally:
        srv.stop()


# ---- cells: tlsclient against peer servers ---------------------------------------------

def cell_openssl_server(ctx, ver, kind, mtls):
    crt, key = ctx.pair(kind)
    argv = ["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-rev",
            "-cert", crt, "-key", key, "-tls1_2" if ver == "1.2" else "-tls1_3"]
    if mtls:
        argv += ["-Verify", "1", "-CAfile", ctx.cert("ca.crt"), "-verify_return_error"]
    p = Proc(argv)
    try:
        # OpenSSL 3 prints "ACCEPT 127.0.0.1:PORT" once listening: port 0 resolved, no race
        # (a probing connect would use up -naccept 1).
        m = p.wait_for(1, r"^ACCEPT 127\.0\.0\.1:(\d+)$")
        if not m:
            raise CellError("s_server printed no ACCEPT line\n" + p.output())
        proto, cipher, out = run_tlsclient(ctx, int(m.group(1)), mtls, PAYLOAD)
        want = PAYLOAD.decode().rstrip("\n")[::-1] + "\n"  # -rev answers each line reversed
        if out != want:
            raise CellError("tlsclient got %r from s_server -rev, expected %r" % (out, want))
        rc = p.wait()  # -naccept 1: leaves after the connection
        text = p.text(1) + p.text(2)
        v = re.search(r"Protocol version: (\S+)", text)
        if rc != 0 or not v or v.group(1) != VERSIONS[ver]:
            raise CellError("s_server exit %d, protocol %s\n%s" % (rc, v and v.group(1), p.output()))
        if mtls and "tlskit-client" not in text:
            raise CellError("s_server did not show the client certificate\n" + p.output())
        if proto != VERSIONS[ver]:
            raise CellError("tlsclient negotiated %s" % proto)
        check_cipher(kind, proto, cipher)
        return proto, cipher
    finally:
        p.kill()


def cell_gnutls_server(ctx, ver, kind, mtls):
    crt, key = ctx.pair(kind)
    env = dict(os.environ)
    if ctx.shim:
        env["LD_PRELOAD"] = ctx.shim
    last = ""
    for _ in range(5):  # a port found free can be taken before gnutls-serv binds it
        port = free_port()
        argv = ["gnutls-serv", "--echo", "-p", str(port), "--x509certfile", crt,
                "--x509keyfile", key, "--priority", GNUTLS_PRIO[ver]]
        if mtls:
            argv += ["--require-client-cert", "--verify-client-cert", "--x509cafile", ctx.cert("ca.crt")]
        else:
            argv += ["--disable-client-cert"]
        p = Proc(argv, env=env, stdin=False)
        try:
            if not wait_listening(p, port):
                last = p.output()
                if p.p.poll() is not None and re.search(r"in use|bind", last, re.I):
                    continue
                raise CellError("gnutls-serv did not start listening\n" + last)
            proto, cipher, out = run_tlsclient(ctx, port, mtls, PAYLOAD)
            if out != PAYLOAD.decode():
                raise CellError("tlsclient got %r from gnutls-serv --echo" % out)
            # The server's own account of the connection (after the probe's failed one).
            if not p.wait_for(1, r"- Description: \(TLS1\.[23]-X\.509\)"):
                raise CellError("gnutls-serv logged no handshake\n" + p.output())
            v = gnutls_version(p.text(1))
            if v != VERSIONS[ver]:
                raise CellError("gnutls-serv negotiated %s\n%s" % (v, p.output()))
            desc = re.findall(r"- Description: (.*)", p.text(1))[-1]
            if ("ECDSA" in desc) != (kind == "ECDSA"):
                raise CellError("gnutls-serv: %s for the %s certificate" % (desc, kind))
            if mtls and "CN=tlskit-client" not in p.text(1):
                raise CellError("gnutls-serv did not show the client certificate\n" + p.output())
            if proto != VERSIONS[ver]:
                raise CellError("tlsclient negotiated %s" % proto)
            check_cipher(kind, proto, cipher)
            return proto, cipher
        finally:
            p.kill()
    raise CellError("gnutls-serv: no free port after 5 tries\n" + last)


def cell_python_server(ctx, ver, kind, mtls):
    crt, key = ctx.pair(kind)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(crt, key)
    sctx.minimum_version = sctx.maximum_version = (
        ssl.TLSVersion.TLSv1_2 if ver == "1.2" else ssl.TLSVersion.TLSv1_3)
    if mtls:
        sctx.verify_mode = ssl.CERT_REQUIRED
        sctx.load_verify_locations(ctx.cert("ca.crt"))
    result = {}
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))  # in-process: the port is known at once, no race
    lsock.listen(1)
    lsock.settimeout(STEP_TIMEOUT)
    port = lsock.getsockname()[1]

    def serve():
        try:
            raw, _ = lsock.accept()
            raw.settimeout(STEP_TIMEOUT)
            with sctx.wrap_socket(raw, server_side=True) as s:
                result["version"] = s.version()
                result["peer"] = s.getpeercert()
                while True:
                    data = s.recv(4096)
                    if not data:  # the client's close_notify
                        break
                    s.sendall(data)
                s.unwrap()  # our close_notify
        except Exception as e:  # reported by the main thread
            result["error"] = "%s: %s" % (type(e).__name__, e)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        proto, cipher, out = run_tlsclient(ctx, port, mtls, PAYLOAD)
    finally:
        t.join(STEP_TIMEOUT)
        lsock.close()
    if t.is_alive():
        raise CellError("python server did not finish")
    if "error" in result:
        raise CellError("python server: " + result["error"])
    if out != PAYLOAD.decode():
        raise CellError("tlsclient got %r from the python echo server" % out)
    if result.get("version") != VERSIONS[ver] or proto != VERSIONS[ver]:
        raise CellError("python server %s, tlsclient %s" % (result.get("version"), proto))
    if mtls:
        subject = dict(x[0] for x in result.get("peer", {}).get("subject", ()))
        if subject.get("commonName") != "tlskit-client":
            raise CellError("python server saw client certificate %r" % result.get("peer"))
    check_cipher(kind, proto, cipher)
    return proto, cipher


DIRECTIONS = [
    ("openssl s_client → tlsserver", cell_openssl_client, ["openssl"]),
    ("tlsclient → openssl s_server", cell_openssl_server, ["openssl"]),
    ("gnutls-cli → tlsserver", cell_gnutls_client, ["gnutls-cli"]),
    ("tlsclient → gnutls-serv", cell_gnutls_server, ["gnutls-serv"]),
    ("curl → tlsserver --mode http", cell_curl, ["curl"]),
    ("python ssl → tlsserver", cell_python_client, []),
    ("tlsclient → python ssl server", cell_python_server, []),
]
COLUMNS = [(v, k, m) for v in ("1.2", "1.3") for k in ("ECDSA", "RSA") for m in (False, True)]


def col_name(v, k, m):
    return "TLS %s %s%s" % (v, k, " mTLS" if m else "")


def check_tools(args):
    missing = []
    for tool, pkg in PEER_PACKAGES.items():
        if shutil.which(tool) is None:
            missing.append("%s (Debian package %s)" % (tool, pkg))
    for f, what in ((args.server, "tlsserver"), (args.client, "tlsclient")):
        if not os.access(f, os.X_OK):
            missing.append("%s: %s not built" % (f, what))
    for f in ("ca.crt", "server.crt", "rsa.crt", "client.crt"):
        if not os.path.exists(os.path.join(args.certs, f)):
            missing.append("%s (run scripts/gen-certs.sh --out %s)" % (f, args.certs))
    if args.shim and not os.path.exists(args.shim):
        missing.append("%s (the loopback bind shim; build target tk_loopback_bind)" % args.shim)
    if not hasattr(ssl, "TLSVersion"):
        missing.append("Python ssl.TLSVersion (Python 3.7+ with OpenSSL)")
    return missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--shim", help="LD_PRELOAD library making wildcard binds loopback")
    ap.add_argument("--markdown", help="write the result table here")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", help="regex on 'direction | column' to run a subset")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    missing = check_tools(args)
    if missing:
        for m in missing:
            print("interop_matrix: FAIL: missing %s" % m)
        pkgs = sorted({PEER_PACKAGES[t] for t in PEER_PACKAGES if shutil.which(t) is None})
        if pkgs:
            print("interop_matrix: install with: apt-get install -y %s (or scripts/setup.sh)"
                  % " ".join(pkgs))
        print("0 passed, %d failed" % len(missing))
        return 1
    ctx = Ctx(args)

    cells = []
    for name, fn, _ in DIRECTIONS:
        for col in COLUMNS:
            label = "%s | %s" % (name, col_name(*col))
            if args.only and not re.search(args.only, label):
                continue
            cells.append((name, col, fn, label))

    def run(cell):
        name, (v, k, m), fn, label = cell
        t0 = time.monotonic()
        try:
            proto, cipher = fn(ctx, v, k, m)
            return cell, True, "%s %s" % (proto, cipher), time.monotonic() - t0
        except CellError as e:
            return cell, False, str(e), time.monotonic() - t0
        except Exception as e:  # a bug in a cell must fail it, not the whole run
            return cell, False, "%s: %s" % (type(e).__name__, e), time.monotonic() - t0

    results = {}
    passed = failed = 0
    t_start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for cell, ok, detail, secs in ex.map(run, cells):
            name, col, _, label = cell
            results[(name, col)] = (ok, detail)
            if ok:
                passed += 1
                print("PASS %-62s %s (%.1fs)" % (label, detail, secs))
            else:
                failed += 1
                print("FAIL %-62s (%.1fs)\n     %s" % (label, secs, detail.replace("\n", "\n     ")))
            sys.stdout.flush()

    table = markdown_table(results)
    print()
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    print("interop matrix: %d cells in %.0f s" % (len(cells), time.monotonic() - t_start))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


def markdown_table(results):
    cols = [c for c in COLUMNS if any((n, c) in results for n, _, _ in DIRECTIONS)]
    lines = ["| peer | " + " | ".join(col_name(*c) for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    ciphers = {}
    for name, _, _ in DIRECTIONS:
        if not any((name, c) in results for c in cols):
            continue
        row = []
        for c in cols:
            if (name, c) not in results:
                row.append("")
                continue
            ok, detail = results[(name, c)]
            if ok:
                proto, cipher = detail.split(" ", 1)
                ciphers.setdefault(cipher, len(ciphers) + 1)
                row.append("✅ %s" % proto.replace("TLSv", ""))
            else:
                row.append("❌")
        lines.append("| %s | %s |" % (name, " | ".join(row)))
    lines.append("")
    lines.append("✅ = handshake, data exchange and clean close verified on both ends, with the "
                 "protocol version shown (as both ends reported it); ❌ = failed.")
    lines.append("Ciphers negotiated: " + ", ".join(sorted(ciphers)) + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
