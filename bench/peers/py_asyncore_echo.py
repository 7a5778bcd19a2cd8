"""Python 3.11 asyncore echo server: the reference this project re-implements.

    python3.11 -W ignore::DeprecationWarning bench/peers/py_asyncore_echo.py \
        [--host 127.0.0.1] [--port 0]

Prints "LISTENING <port>" once listening; exits 0 on SIGTERM/SIGINT.
Written the way the asyncore docs write it (dispatcher + dispatcher_with_send),
so it measures asyncore as people actually use it.
"""
import argparse
import asyncore
import signal
import socket
import sys


class EchoHandler(asyncore.dispatcher_with_send):
    def handle_read(self):
        data = self.recv(65536)
        if data:
            self.send(data)

    def handle_error(self):
        # A peer resetting at the end of a run is expected; asyncore's default
        # prints a traceback per connection and would flood the log.
        self.close()


class EchoServer(asyncore.dispatcher):
    def __init__(self, host, port):
        super().__init__()
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind((host, port))
        self.listen(4096)

    def handle_accepted(self, sock, addr):
        # Same as every other peer: never let Nagle hold back an echo.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        EchoHandler(sock)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    server = EchoServer(args.host, args.port)
    # SystemExit is one of the exceptions asyncore re-raises from handlers,
    # so raising it from the signal handler leaves loop() at once.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    print(f"LISTENING {server.socket.getsockname()[1]}", flush=True)
    try:
        # poll, not select: select() cannot watch fds >= 1024 (FD_SETSIZE).
        asyncore.loop(timeout=1.0, use_poll=True)
    finally:
        asyncore.close_all()


if __name__ == "__main__":
    main()
