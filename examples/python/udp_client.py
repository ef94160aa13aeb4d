#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The tutorial's UDP client: each line of stdin is one datagram; print each reply.

    udp_client.py HOST PORT < lines

Plain UDP (Python's ssl module has no DTLS). With DTLS 1.2 the same exchange is
    tlsclient --udp --ca certs/ca.crt HOST PORT < lines     (against tlsserver --udp)
which also sends one datagram per line. UDP may lose a datagram: here a reply that does
not come within 10 seconds is an error.
"""
import socket
import sys


def main():
    if len(sys.argv) != 3:
        print("usage: udp_client.py HOST PORT", file=sys.stderr)
        return 2
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.connect((sys.argv[1], int(sys.argv[2])))  # replies only from that peer
        for line in sys.stdin.buffer:
            sock.send(line)
            sys.stdout.buffer.write(sock.recv(65535))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as e:  # socket.timeout is an OSError
        print(f"udp_client.py: {e}", file=sys.stderr)
        sys.exit(1)
