"""Python asyncio echo server (Protocol API, default event loop, no uvloop).

    python3.11 bench/peers/py_asyncio_echo.py [--host 127.0.0.1] [--port 0]

Prints "LISTENING <port>" once listening; exits 0 on SIGTERM/SIGINT.
The Protocol API (not streams) is asyncio's fastest pure-Python path, which is
the fair comparison for a callback-style asyncore.
"""
import argparse
import asyncio
import signal


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        # asyncio already sets TCP_NODELAY on TCP transports, like the other peers.
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False  # close our side too


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    server = await loop.create_server(Echo, args.host, args.port, backlog=4096,
                                      reuse_address=True)
    print(f"LISTENING {server.sockets[0].getsockname()[1]}", flush=True)
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
