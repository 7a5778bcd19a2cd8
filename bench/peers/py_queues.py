"""Reference rows for bench/queues.mjs: Python 3.11's asynchat on the same workload.

    python3.11 -W ignore::DeprecationWarning bench/peers/py_queues.py [--sizes 50000,100000,200000] [--runs 3]

An AF_UNIX socketpair; the sending end is an asynchat.async_chat in its own
map, its buffer first filled with raw writes until EAGAIN. The clock starts;
N pushes of b"250 OK\\r\\n"; then asyncore.loop(timeout=0, use_poll=True,
count=1) passes, the peer reading everything it can after each, until it has
every byte. Each run checks the byte count and has a time limit. Prints one
JSON array on stdout: [{"n": N, "results": [{"seconds": s, "cpuSeconds": c, "passes": p}, ...]}].
"""
import argparse
import asynchat
import asyncore
import json
import socket
import time

ITEM = b"250 OK\r\n"
RUN_LIMIT_S = 120


class Chat(asynchat.async_chat):
    def collect_incoming_data(self, data):
        pass

    def found_terminator(self):
        pass


def fill(sock):
    sock.setblocking(False)
    blob = b"." * 65536
    n = 0
    while True:
        try:
            n += sock.send(blob)
        except BlockingIOError:
            return n


def drain_peer(peer, sink):
    got = 0
    while True:
        try:
            r = peer.recv_into(sink)
        except BlockingIOError:
            return got
        if r == 0:
            return got
        got += r


def run(n):
    a, b = socket.socketpair()
    m = {}
    try:
        b.setblocking(False)
        filler = fill(a)
        ch = Chat(a, map=m)
        sink = bytearray(1 << 18)
        want = filler + n * len(ITEM)
        t0 = time.perf_counter()
        c0 = time.process_time()
        for _ in range(n):
            ch.push(ITEM)
        got = 0
        passes = 0
        limit = t0 + RUN_LIMIT_S
        while got < want:
            asyncore.loop(timeout=0, use_poll=True, map=m, count=1)
            passes += 1
            got += drain_peer(b, sink)
            if time.perf_counter() > limit:
                raise SystemExit(f"asynchat {n}: not drained after {RUN_LIMIT_S} s")
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - c0
        if got != want:
            raise SystemExit(f"asynchat {n}: the peer got {got} bytes, expected {want}")
        return {"seconds": seconds, "cpuSeconds": cpu_seconds, "passes": passes}
    finally:
        asyncore.close_all(map=m)
        a.close()
        b.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="50000,100000,200000")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    run(10_000)  # warm-up, as the Node side does
    out = []
    for n in (int(x) for x in args.sizes.split(",")):
        out.append({"n": n, "results": [run(n) for _ in range(args.runs)]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
