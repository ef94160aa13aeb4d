#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The tutorial's asyncio echo server, with TLS: asyncio.start_server(..., ssl=context).

    asyncio_server.py [--bind HOST] [--port PORT] [--cert FILE] [--key FILE] [--exit-after N]

asyncio does the handshake and close_notify itself. One difference from the threaded
server: asyncio's streams take the client's close_notify as the end of the whole
connection (no TLS half-close), so whatever is not yet echoed when it arrives is dropped;
an interactive client (tlsclient typed into) waits for its answers before it ends. PORT 0 picks a free port; the first
line on stdout is 'listening on HOST:PORT'. Try it with tlskit's client:
    asyncio_server.py --port 4433 &  echo hi | tlsclient --ca certs/ca.crt localhost 4433
"""
import argparse
import asyncio
import ssl
import sys


async def main(args):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    done = 0
    all_done = asyncio.Event()

    async def echo(reader, writer):
        nonlocal done
        peer = writer.get_extra_info("peername")
        n = 0
        try:
            while data := await reader.read(16384):  # b"" at the client's close_notify
                writer.write(data)
                await writer.drain()
                n += len(data)
            writer.close()  # sends close_notify
            await writer.wait_closed()
            print(f"conn {peer[0]}:{peer[1]} bytes={n} ok", file=sys.stderr, flush=True)
        except (OSError, ssl.SSLError) as e:
            print(f"conn {peer[0]}:{peer[1]} bytes={n} error: {e}", file=sys.stderr, flush=True)
            writer.close()
        done += 1
        if done == args.exit_after:
            all_done.set()

    server = await asyncio.start_server(echo, args.bind, args.port, ssl=context,
                                        ssl_handshake_timeout=30)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    async with server:
        if args.exit_after:
            await all_done.wait()
        else:
            await server.serve_forever()
    return 0


def parse():
    p = argparse.ArgumentParser(description="asyncio TLS echo server")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4433)
    p.add_argument("--cert", default="certs/server.crt")
    p.add_argument("--key", default="certs/server.key")
    p.add_argument("--exit-after", type=int, default=0,
                   help="exit after N clients (a failed handshake never reaches echo(): "
                        "asyncio logs it and does not count it)")
    return p.parse_args()


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse())))
    except KeyboardInterrupt:
        sys.exit(0)
