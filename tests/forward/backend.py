#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The plain TCP (or UNIX-socket) backends of test_forward: what a real service behind
# tlsserver --forward does, and the ways it misbehaves. argv: MODE [UNIX_PATH].
# Prints its port (or "ready") first, then one line per event the test waits for.
# Exits when its stdin closes.
import json
import os
import socket
import struct
import sys
import threading
import time

mode = sys.argv[1]
path = sys.argv[2] if len(sys.argv) > 2 else None


def say(*args):
    print(*args, flush=True)


def echo(c, first=b""):
    data = first
    while True:
        if data:
            c.sendall(data)
        data = c.recv(262144)
        if not data:
            break
    c.shutdown(socket.SHUT_WR)  # the half-close answered: our end after theirs
    c.close()


def read_proxy(c):
    """Parse a PROXY v1 or v2 header; returns (fields, bytes after it)."""
    buf = b""
    while len(buf) < 16:
        d = c.recv(4096)
        if not d:
            raise EOFError
        buf += d
    if buf.startswith(b"PROXY "):
        while b"\r\n" not in buf:
            buf += c.recv(4096)
        line, rest = buf.split(b"\r\n", 1)
        f = line.decode().split(" ")
        out = {"version": 1, "proto": f[1]}
        if f[1] != "UNKNOWN":
            out.update(src=f[2], dst=f[3], sport=int(f[4]), dport=int(f[5]))
        return out, rest
    sig = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
    assert buf[:12] == sig, buf[:16]
    ver_cmd, fam, ln = buf[12], buf[13], struct.unpack("!H", buf[14:16])[0]
    while len(buf) < 16 + ln:
        buf += c.recv(4096)
    body, rest = buf[16:16 + ln], buf[16 + ln:]
    out = {"version": 2, "ver_cmd": ver_cmd, "fam": fam}
    if fam == 0x11:
        src, dst, sp, dp = struct.unpack("!4s4sHH", body[:12])
        out.update(src=socket.inet_ntop(socket.AF_INET, src),
                   dst=socket.inet_ntop(socket.AF_INET, dst), sport=sp, dport=dp)
        tlvs = body[12:]
    elif fam == 0x21:
        src, dst, sp, dp = struct.unpack("!16s16sHH", body[:36])
        out.update(src=socket.inet_ntop(socket.AF_INET6, src),
                   dst=socket.inet_ntop(socket.AF_INET6, dst), sport=sp, dport=dp)
        tlvs = body[36:]
    else:
        tlvs = body
    names = {0x01: "alpn", 0x02: "authority", 0x21: "ssl_version", 0x22: "ssl_cn",
             0x23: "ssl_cipher"}

    def walk(b):
        while b:
            t, n = b[0], struct.unpack("!H", b[1:3])[0]
            v = b[3:3 + n]
            assert len(v) == n, "TLV longer than the header"
            if t == 0x20:
                out["ssl_client"], out["ssl_verify"] = v[0], struct.unpack("!I", v[1:5])[0]
                walk(v[5:])
            else:
                out[names.get(t, "type_%d" % t)] = v.decode()
            b = b[3 + n:]
    walk(tlvs)
    return out, rest


def serve(c):
    try:
        if mode == "echo" or mode == "unix" or mode == "slow":
            echo(c)
        elif mode == "proxy":
            fields, rest = read_proxy(c)
            say("proxy " + json.dumps(fields, sort_keys=True))
            echo(c, rest)
        elif mode == "sink":  # never reads
            say("accepted")
            held.append(c)
        elif mode == "flood":  # sends until the socket breaks
            chunk = b"x" * 262144
            sent = 0
            say("accepted")
            try:
                while True:
                    sent += c.send(chunk)
            except OSError as e:
                say("flood ended after %d bytes: %s" % (sent, e.strerror))
        elif mode == "reset":  # a reset after the first kilobyte
            got = 0
            while got < 1000:
                d = c.recv(65536)
                if not d:
                    break
                got += len(d)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            say("reset after %d bytes" % got)
        elif mode == "halfclose":  # our half-close first, then read what still comes
            c.sendall(b"server-first")
            c.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                d = c.recv(65536)
                if not d:
                    break
                got += d
            say("got %d bytes: %s" % (len(got), got[:64].decode(errors="replace")))
            c.close()
    except (OSError, EOFError, AssertionError) as e:
        say("error %r" % (e,))


held = []


def main():
    if mode == "unix":
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(1024)
        say("ready")
    else:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(0 if mode == "backlog0" else 1024)
        if mode == "backlog0":  # a full queue: the kernel drops further SYNs
            held.append(s)
            held.append(socket.create_connection(s.getsockname()))
        say(s.getsockname()[1])
    if mode == "backlog0":
        return
    if mode == "slow":
        time.sleep(1)  # connections wait in the backlog, their bytes in the kernel
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


threading.Thread(target=main, daemon=True).start()
sys.stdin.read()  # the test closes our stdin when it is done
os._exit(0)
