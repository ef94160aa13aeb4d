#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Runs the Python tutorial programs of examples/python/ against the real tlskit apps.

    python_examples.py EXAMPLES_DIR
Environment (set by ctest): TLSKIT_SERVER_BIN, TLSKIT_CLIENT_BIN, TLSKIT_TEST_CERTS.

Every server binds 127.0.0.1 port 0 and is ready once its 'listening on' line is printed;
no fixed sleeps. Every exchange checks the bytes that came back, and the certificate checks
are shown to be on (a client given the wrong CA must fail).
"""
import os
import random
import re
import select
import subprocess
import sys
import threading

PY = "/usr/bin/python3"  # Debian's, not whatever python3 is first on PATH
LIMIT = 120  # generous bound for any one process (seconds); never a sleep

failures = []


def check(cond, what):
    if cond:
        print(f"ok   {what}")
    else:
        print(f"FAIL {what}")
        failures.append(what)
    return cond


def start(cmd):
    """Start a server, return (process, port) once it printed its 'listening on' line."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], LIMIT)
        if not ready:
            proc.kill()
            raise RuntimeError(f"{cmd[0]}: no 'listening on' line within {LIMIT} s")
        c = os.read(proc.stdout.fileno(), 1)
        if not c:
            err = proc.communicate()[1].decode(errors="replace")
            raise RuntimeError(f"{cmd}: exited before listening: {err}")
        line += c
    m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"{cmd[0]}: unexpected first line {line!r}")
    return proc, int(m.group(1))


def finish(proc):
    """Wait for a server that was told --exit-after N; return (status, stderr text)."""
    try:
        _, err = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return "timed out", err.decode(errors="replace")
    return proc.returncode, err.decode(errors="replace")


def run(cmd, data=b""):
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=LIMIT)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def echo_then_close(cmd, data):
    """Send data, read its echo in full, only then end stdin (tlsclient's close_notify).

    asyncio's streams treat the peer's close_notify as the end of the whole connection
    (no TLS half-close): what the server had not yet echoed would be dropped. An
    interactive client waits for its answer before it closes, so the test does too."""
    c = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    writer = threading.Thread(target=lambda: (c.stdin.write(data), c.stdin.flush()))
    writer.start()
    out = b""
    while len(out) < len(data):
        ready, _, _ = select.select([c.stdout], [], [], LIMIT)
        chunk = os.read(c.stdout.fileno(), 65536) if ready else b""
        if not chunk:
            break
        out += chunk
    writer.join()
    rest, err = c.communicate(timeout=LIMIT)  # closes stdin: close_notify
    return c.returncode, out + rest, err.decode(errors="replace")


def tlsclient(port, ca, extra=()):
    return [os.environ["TLSKIT_CLIENT_BIN"], "-q", "--ca", ca, *extra, "127.0.0.1", str(port)]


def test_tls_client(ex, certs, server_bin):
    """The tutorial's TLS client (tls_client.py) against tlsserver's echo."""
    srv, port = start([server_bin, "--bind", "127.0.0.1", "--port", "0", "--exit-after", "2",
                       "--cert", f"{certs}/server.crt", "--key", f"{certs}/server.key"])
    msg = "Hello, tlskit \u00e9\u00e8 \u2713"
    rc, out, err = run([PY, f"{ex}/tls_client.py", "--ca", f"{certs}/ca.crt",
                        "127.0.0.1", str(port), msg])
    check(rc == 0 and out.decode() == f"Received {msg.encode()!r} (TLSv1.3)\n",
          f"tls_client.py -> tlsserver: the echo came back whole ({out!r} {err})")
    rc, out, err = run([PY, f"{ex}/tls_client.py", "--ca", f"{certs}/other-ca.crt",
                        "127.0.0.1", str(port)])
    check(rc == 1 and "CERTIFICATE_VERIFY_FAILED" in err,
          f"tls_client.py with the wrong CA refuses tlsserver (rc={rc} {err.strip()})")
    status, log = finish(srv)
    n = len(msg.encode())
    check(status == 0 and re.search(rf"proto=TLSv1\.3 .* in={n} out={n} .* ok$", log, re.M),
          f"tlsserver saw a clean connection ({status}: {log!r})")


def test_server(ex, certs, name, exit_after, interactive):
    """threaded_server.py / asyncio_server.py answering tlsclient."""
    srv, port = start([PY, f"{ex}/{name}", "--port", "0", "--exit-after", str(exit_after),
                       "--cert", f"{certs}/server.crt", "--key", f"{certs}/server.key"])
    rc, out, err = run(tlsclient(port, f"{certs}/other-ca.crt"), b"secret\n")
    check(rc == 5 and out == b"", f"tlsclient with the wrong CA refuses {name} (rc={rc})")
    rng = random.Random(15)
    inputs = [b"Hello, world\n", bytes(rng.getrandbits(8) for _ in range(256 * 1024)),
              b"".join(b"line %d\n" % i for i in range(1000))]
    results = [None] * len(inputs)

    def client(i):
        cmd = tlsclient(port, f"{certs}/ca.crt")
        results[i] = echo_then_close(cmd, inputs[i]) if interactive else run(cmd, inputs[i])
    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(inputs))]
    for t in threads:  # all connected at once: the server serves them together
        t.start()
    for t in threads:
        t.join()
    for i, (data, (rc, out, err)) in enumerate(zip(inputs, results)):
        check(rc == 0 and out == data,
              f"tlsclient {i} <-> {name}: {len(data)} bytes echoed (rc={rc}, "
              f"got {len(out)}) {err.strip()}")
    status, log = finish(srv)
    oks = re.findall(r"bytes=(\d+) ok$", log, re.M)
    check(status == 0 and sorted(map(int, oks)) == sorted(map(len, inputs)),
          f"{name} exited 0 after serving each client cleanly ({status}: {log!r})")


def test_datagrams(ex, certs, server_bin):
    """The UDP pair in Python next to the DTLS pair (tlsserver --udp, tlsclient --udp)."""
    rng = random.Random(1500)
    lines = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ")
                   for _ in range(rng.randrange(1, 900))) + b"\n" for _ in range(30)]
    data = b"".join(lines)

    srv, port = start([PY, f"{ex}/udp_server.py", "--port", "0",
                       "--exit-after", str(len(lines))])
    rc, out, err = run([PY, f"{ex}/udp_client.py", "127.0.0.1", str(port)], data)
    check(rc == 0 and out == data,
          f"udp_client.py <-> udp_server.py: {len(lines)} datagrams echoed ({rc} {err})")
    status, _ = finish(srv)
    check(status == 0, f"udp_server.py exited 0 after {len(lines)} datagrams ({status})")

    srv, port = start([server_bin, "--udp", "--bind", "127.0.0.1", "--port", "0",
                       "--exit-after", "1",
                       "--cert", f"{certs}/server.crt", "--key", f"{certs}/server.key"])
    rc, out, err = run(tlsclient(port, f"{certs}/ca.crt", ["--udp"]), data)
    check(rc == 0 and out == data,
          f"tlsclient --udp <-> tlsserver --udp: {len(lines)} datagrams echoed ({rc} {err})")
    status, log = finish(srv)
    n = len(data)
    check(status == 0 and re.search(rf"proto=DTLSv1\.2 .* in={n} out={n} .* ok$", log, re.M),
          f"tlsserver --udp saw a clean DTLS connection ({status}: {log!r})")


def main():
    if len(sys.argv) != 2:
        print("usage: python_examples.py EXAMPLES_DIR", file=sys.stderr)
        return 2
    ex = sys.argv[1]
    certs = os.environ["TLSKIT_TEST_CERTS"]
    server_bin = os.environ["TLSKIT_SERVER_BIN"]
    for test in (lambda: test_tls_client(ex, certs, server_bin),
                 # the threaded server counts the refused client; it echoes after the
                 # client's close_notify (TLS half-close), so stdin may end at once
                 lambda: test_server(ex, certs, "threaded_server.py", 4, False),
                 # asyncio never hands a failed handshake to echo(): 3 clients served
                 lambda: test_server(ex, certs, "asyncio_server.py", 3, True),
                 lambda: test_datagrams(ex, certs, server_bin)):
        try:
            test()
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            check(False, str(e))
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
