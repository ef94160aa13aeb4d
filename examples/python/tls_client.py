#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The tutorial's echo client, with TLS: connect, send one message, print the reply.

    tls_client.py [--ca FILE] [--servername NAME] HOST PORT [MESSAGE]

The tutorial's last step was ssl.wrap_socket(sock); that function was deprecated in
Python 3.7 and removed in 3.12. Today: make an SSLContext once, then
context.wrap_socket(sock, server_hostname=...). create_default_context() verifies the
server's certificate and its name (here against --ca, e.g. tlskit's certs/ca.crt).
Try it against tlskit:  tlsserver --port 4433 &  tls_client.py --ca certs/ca.crt localhost 4433
"""
import argparse
import socket
import ssl
import sys


def main():
    p = argparse.ArgumentParser(description="send MESSAGE over TLS, print the echo")
    p.add_argument("--ca", help="trust the CA certificates in this PEM file only")
    p.add_argument("--servername", help="name to check the certificate against (default HOST)")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("message", nargs="?", default="Hello, world")
    args = p.parse_args()
    message = args.message.encode()

    context = ssl.create_default_context(cafile=args.ca)  # CERT_REQUIRED + check_hostname
    with socket.create_connection((args.host, args.port), timeout=30) as sock:
        with context.wrap_socket(sock, server_hostname=args.servername or args.host) as tls:
            tls.sendall(message)
            data = b""
            while len(data) < len(message):  # TLS, like TCP, is a stream: loop
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
            version = tls.version()
            tls.unwrap()  # send close_notify and wait for the server's: a clean end
    print(f"Received {data!r} ({version})")
    return 0 if data == message else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ssl.SSLError) as e:  # e.g. ssl.SSLCertVerificationError
        print(f"tls_client.py: {e}", file=sys.stderr)
        sys.exit(1)
