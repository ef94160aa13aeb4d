#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Scripted STARTTLS servers for test_starttls.c: FAKES, used where no real server is
practical here (FTP and XMPP: vsftpd/proftpd/prosody want system-wide set-up) and for the
misbehaviours no real server shows on demand (not offering STARTTLS, refusing it, closing
mid-dialogue, injecting bytes after the go-ahead, silence, endless lines).

Usage: starttls_fake.py SCENARIO CERT KEY
Binds 127.0.0.1 port 0, prints "listening on PORT" (flushed), serves one client: the plain
dialogue of SCENARIO, then (when the scenario agrees to TLS) a TLS server that echoes one
line back and closes with close_notify."""
import socket
import ssl
import sys
import time

scenario, cert, key = sys.argv[1:4]


def lines(f, n):
    """Read n lines from the client (file object), return them."""
    return [f.readline() for _ in range(n)]


def smtp(c, f, offer=True, refuse=False, close_at=None, inject=False):
    c.sendall(b"220-fake.test ESMTP (scripted fake)\r\n220 fake.test ready\r\n")
    if close_at == "greeting":
        return False
    f.readline()  # EHLO
    caps = b"250-fake.test\r\n250-PIPELINING\r\n"
    caps += b"250-STARTTLS\r\n250 8BITMIME\r\n" if offer else b"250 8BITMIME\r\n"
    c.sendall(caps)
    if not offer:
        f.readline()
        return False
    f.readline()  # STARTTLS
    if close_at == "starttls":
        return False
    if refuse:
        c.sendall(b"454 4.7.0 TLS not available due to local problem\r\n")
        f.readline()
        return False
    c.sendall(b"220 2.0.0 Ready to start TLS\r\n" + (b"250 injected\r\n" if inject else b""))
    return True


def imap(c, f, offer=True):
    c.sendall(b"* OK [CAPABILITY IMAP4rev1] fake ready\r\n")
    tag = f.readline().split(b" ")[0]
    caps = b"IMAP4rev1 STARTTLS LOGINDISABLED" if offer else b"IMAP4rev1 AUTH=PLAIN"
    c.sendall(b"* CAPABILITY " + caps + b"\r\n" + tag + b" OK done\r\n")
    if not offer:
        f.readline()
        return False
    tag = f.readline().split(b" ")[0]
    c.sendall(tag + b" OK Begin TLS negotiation now\r\n")
    return True


def pop3(c, f, refuse=False):
    c.sendall(b"+OK fake POP3 ready\r\n")
    f.readline()  # CAPA
    c.sendall(b"+OK\r\nUSER\r\nSTLS\r\nSASL PLAIN\r\n.\r\n")
    f.readline()  # STLS
    if refuse:
        c.sendall(b"-ERR [IN-USE] TLS is not available right now\r\n")
        f.readline()
        return False
    c.sendall(b"+OK Begin TLS\r\n")
    return True


def ftp(c, f, offer=True):
    c.sendall(b"220-fake FTP (scripted fake)\r\n220 ready\r\n")
    f.readline()  # FEAT
    feats = b" AUTH TLS\r\n PBSZ\r\n PROT\r\n" if offer else b" MDTM\r\n SIZE\r\n"
    c.sendall(b"211-Features:\r\n" + feats + b"211 End\r\n")
    if not offer:
        f.readline()
        return False
    f.readline()  # AUTH TLS
    c.sendall(b"234 AUTH TLS successful\r\n")
    return True


def xmpp(c, refuse=False):
    data = b""
    while b">" not in data.split(b"<stream:stream", 1)[-1]:
        chunk = c.recv(4096)
        if not chunk:
            return False
        data += chunk
    c.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              b"xmlns:stream='http://etherx.jabber.org/streams' id='fake' from='localhost' "
              b"version='1.0'><stream:features><starttls "
              b"xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
              b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN"
              b"</mechanism></mechanisms></stream:features>")
    data = b""
    while b"/>" not in data:
        chunk = c.recv(4096)
        if not chunk:
            return False
        data += chunk
    if refuse:
        c.sendall(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>")
        return False
    c.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    return True


def postgres(c, answer):
    if len(c.recv(8)) != 8:
        return False
    c.sendall(answer)
    return answer == b"S"


SCENARIOS = {
    "smtp": lambda c, f: smtp(c, f),
    "smtp-no-starttls": lambda c, f: smtp(c, f, offer=False),
    "smtp-refuse": lambda c, f: smtp(c, f, refuse=True),
    "smtp-close": lambda c, f: smtp(c, f, close_at="starttls"),
    "smtp-inject": lambda c, f: smtp(c, f, inject=True),
    "imap-no-starttls": lambda c, f: imap(c, f, offer=False),
    "pop3-refuse": lambda c, f: pop3(c, f, refuse=True),
    "ftp": lambda c, f: ftp(c, f),
    "ftp-no-auth-tls": lambda c, f: ftp(c, f, offer=False),
    "xmpp": lambda c, f: xmpp(c),
    "xmpp-refuse": lambda c, f: xmpp(c, refuse=True),
    "postgres-N": lambda c, f: postgres(c, b"N"),
    "silent": lambda c, f: time.sleep(30),
    "endless-line": lambda c, f: c.sendall(b"220 " + b"x" * 100000),
}

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print("listening on %d" % srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
rfile = conn.makefile("rb", buffering=0)
try:
    go = SCENARIOS[scenario](conn, rfile)
    if go:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        tls = ctx.wrap_socket(conn, server_side=True)
        line = b""
        while not line.endswith(b"\n"):
            chunk = tls.recv(4096)
            if not chunk:
                break
            line += chunk
        tls.sendall(b"echo: " + line)
        tls.unwrap()
except (OSError, ssl.SSLError) as e:
    print("fake: %s" % e, file=sys.stderr, flush=True)
finally:
    conn.close()
