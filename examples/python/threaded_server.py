#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The tutorial's threaded echo server, with TLS: one thread per client.

    threaded_server.py [--bind HOST] [--port PORT] [--cert FILE] [--key FILE] [--exit-after N]

The handshake runs in the client's thread (context.wrap_socket(conn, server_side=True)),
so a slow client does not hold up accept(). PORT 0 picks a free port; the first line on
stdout is 'listening on HOST:PORT'. Try it with tlskit's client:
    threaded_server.py --port 4433 &  echo hi | tlsclient --ca certs/ca.crt localhost 4433
"""
import argparse
import socket
import ssl
import sys
import threading


def serve(context, conn, peer):
    n = 0
    try:
        with context.wrap_socket(conn, server_side=True,
                                 suppress_ragged_eofs=False) as tls:  # truncation = error
            while True:
                data = tls.recv(16384)
                if not data:  # the client's close_notify
                    break
                tls.sendall(data)
                n += len(data)
            tls.unwrap()  # our close_notify
        print(f"conn {peer[0]}:{peer[1]} bytes={n} ok", file=sys.stderr, flush=True)
    except (OSError, ssl.SSLError) as e:
        print(f"conn {peer[0]}:{peer[1]} bytes={n} error: {e}", file=sys.stderr, flush=True)
        conn.close()


def main():
    p = argparse.ArgumentParser(description="threaded TLS echo server")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4433)
    p.add_argument("--cert", default="certs/server.crt")
    p.add_argument("--key", default="certs/server.key")
    p.add_argument("--exit-after", type=int, default=0, help="exit after N clients")
    args = p.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # TLS 1.2+, no client certificate
    context.load_cert_chain(args.cert, args.key)
    with socket.create_server((args.bind, args.port)) as listener:  # SO_REUSEADDR set
        host, port = listener.getsockname()[:2]
        print(f"listening on {host}:{port}", flush=True)
        threads = []
        while args.exit_after == 0 or len(threads) < args.exit_after:
            conn, peer = listener.accept()
            conn.settimeout(30)
            t = threading.Thread(target=serve, args=(context, conn, peer))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
