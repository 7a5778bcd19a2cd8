"""Reference row for bench/pollers.mjs: the same workload with Python's select module.

    python3.11 bench/peers/py_pollers.py [--sizes 16,64,...] [--cell-ms 600]

N registered = N/2 AF_UNIX socketpairs, both ends registered for reading; k of
them made ready by writing one byte into their peer (spread evenly). Each
cell: 200 warm-up calls, then ~2 ms batches until cell-ms is spent; the
median batch's ns per call. select.select(rlist, [], [], 0) for N <= 1000
(fd numbers < FD_SETSIZE); select.poll().poll(0); select.epoll().poll(0, N).
Every call's ready count is checked. Prints one JSON array on stdout and
'CELL <label>' progress lines on stderr.
"""
import argparse
import json
import select
import socket
import sys
import time

SELECT_MAX = 1000
FD_SETSIZE = 1024  # glibc's; Python's select module does not export it


def time_cell(call, expect, cell_ms):
    for _ in range(200):
        got = call()
        if got != expect:
            raise SystemExit(f"warm-up call returned {got} ready, expected {expect}")
    t0 = time.perf_counter_ns()
    for _ in range(20):
        call()
    per = (time.perf_counter_ns() - t0) / 20
    batch = max(5, round(2e6 / per))
    samples = []
    calls = 0
    end = time.monotonic() + cell_ms / 1000
    while time.monotonic() < end or len(samples) < 5:
        bad = 0
        s = time.perf_counter_ns()
        for _ in range(batch):
            if call() != expect:
                bad += 1
        e = time.perf_counter_ns()
        if bad:
            raise SystemExit(f"{bad} calls of a batch did not return {expect} ready")
        samples.append((e - s) / batch)
        calls += batch
    samples.sort()
    n = len(samples)
    return {"nsPerCall": samples[n // 2], "p10": samples[int(n * 0.1)], "p90": samples[int(n * 0.9)], "calls": calls}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="16,64,256,1000,4000,16000")
    ap.add_argument("--cell-ms", type=float, default=600)
    a = ap.parse_args()
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        socks = []
        for _ in range(n // 2):
            x, y = socket.socketpair()
            socks += [x, y]
        fds = [s.fileno() for s in socks]
        try:
            for mode in ("1", "10%"):
                k = 1 if mode == "1" else max(1, round(n / 10))
                ready = [(j * n) // k for j in range(k)]
                for i in ready:
                    socks[i ^ 1].send(b"x")
                base = {"impl": "python3.11", "registered": n, "ready": k, "mode": mode}
                if n <= SELECT_MAX:
                    print(f"CELL py select N={n} ready={k}", file=sys.stderr, flush=True)
                    if max(fds) >= FD_SETSIZE:
                        rows.append({**base, "poller": "select", "na": f"fd {max(fds)} >= FD_SETSIZE"})
                    else:
                        rows.append({**base, "poller": "select", **time_cell(lambda: len(select.select(fds, [], [], 0)[0]), k, a.cell_ms)})
                print(f"CELL py poll N={n} ready={k}", file=sys.stderr, flush=True)
                p = select.poll()
                for fd in fds:
                    p.register(fd, select.POLLIN)
                rows.append({**base, "poller": "poll", **time_cell(lambda: len(p.poll(0)), k, a.cell_ms)})
                print(f"CELL py epoll N={n} ready={k}", file=sys.stderr, flush=True)
                ep = select.epoll()
                try:
                    for fd in fds:
                        ep.register(fd, select.EPOLLIN)
                    rows.append({**base, "poller": "epoll", **time_cell(lambda: len(ep.poll(0, n)), k, a.cell_ms)})
                finally:
                    ep.close()
                for i in ready:
                    socks[i].recv(16)
        finally:
            for s in socks:
                s.close()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
