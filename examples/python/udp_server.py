#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The tutorial's UDP echo server: recvfrom() a datagram, sendto() it back. No TLS.

    udp_server.py [--bind HOST] [--port PORT] [--exit-after N]

Python's ssl module has no DTLS, so this pair stays plain; the same exchange with DTLS 1.2
is tlskit's  tlsserver --udp  and  tlsclient --udp  (datagrams kept whole, as here).
PORT 0 picks a free port; the first line on stdout is 'listening on HOST:PORT'.
"""
import argparse
import socket
import sys


def main():
    p = argparse.ArgumentParser(description="UDP echo server")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4433)
    p.add_argument("--exit-after", type=int, default=0, help="exit after N datagrams")
    args = p.parse_args()

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((args.bind, args.port))
        host, port = sock.getsockname()
        print(f"listening on {host}:{port}", flush=True)
        n = 0
        while args.exit_after == 0 or n < args.exit_after:
            data, peer = sock.recvfrom(65535)
            sock.sendto(data, peer)
            n += 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
