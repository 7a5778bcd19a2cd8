#!/usr/bin/env node
// Poller scaling: what one wait call (timeout 0) costs for select, poll and
// epoll as the number of registered descriptors grows, with 1 ready and with
// 10 % ready. Question answered: "how does the cost of asking the kernel
// grow with idle descriptors, per poller?"
//
//   node bench/pollers.mjs [--sizes 16,64,256,1000,4000,16000] [--cell-ms 600] [--json]
//
// Method (also in bench/README.md): N registered descriptors are N/2 AF_UNIX
// socketpairs with *both* ends registered for reading, so N registered costs
// N fds (16 000 fits the 20 000 per-process limit). A descriptor is made
// ready by writing one byte into its peer; the peer itself stays not
// readable, so exactly k of the N are ready. The ready ones are spread evenly
// over the registration order. Each (poller, N, k) cell: 200 warm-up calls,
// then batches of calls timed with process.hrtime.bigint() until --cell-ms is
// spent; the figure is the median batch's ns per call. Every call's result
// count is checked against k (a poller that did not do the work fails the run).
//
// select() is the public Python-shaped select(rlist, [], [], 0) (it builds
// the fd arrays and the result lists per call, as Python's does); Poll and
// Epoll use the allocation-free wait(0, fds, events). select stops at 1000:
// fd numbers must stay below FD_SETSIZE (1024).
//
// This file runs in its own process (bench/run.mjs spawns it) so the fd table
// starts small and numbering is predictable.
import { parseArgs } from 'node:util';
import { socketpair, select, Poll, Epoll, POLLIN, EPOLLIN, FD_SETSIZE } from '../dist/index.js';

export const POLLER_SIZES = [16, 64, 256, 1000, 4000, 16000];
export const QUICK_POLLER_SIZES = [16, 256, 1000, 4000];
/** The largest N given to select(2): every fd number must be < FD_SETSIZE. */
export const SELECT_MAX = 1000;

function makeFds(n) {
  const socks = [];
  const fds = [];
  for (let i = 0; i < n / 2; i++) {
    const [a, b] = socketpair();
    socks.push(a, b);
    fds.push(a.fileno(), b.fileno());
  }
  return { socks, fds };
}

/** Indices of the k ready descriptors, spread evenly; the peer of fds[i] is fds[i ^ 1]. */
function readyIndices(n, k) {
  const out = [];
  for (let j = 0; j < k; j++) out.push(Math.floor((j * n) / k));
  return out;
}

/**
 * Times `call()` (which must return `expect` every time): 200 warm-up calls,
 * then ~2 ms batches for `cellMs`; returns {nsPerCall (median batch), p10, p90, calls}.
 */
export function timeCell(call, expect, cellMs) {
  for (let i = 0; i < 200; i++) {
    const got = call();
    if (got !== expect) throw new Error(`warm-up call returned ${got} ready, expected ${expect}`);
  }
  // Batch size: about 2 ms of calls, at least 5.
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 20; i++) call();
  const per = Number(process.hrtime.bigint() - t0) / 20;
  const batch = Math.max(5, Math.round(2e6 / per));
  const samples = [];
  const end = Date.now() + cellMs;
  let calls = 0;
  while (Date.now() < end || samples.length < 5) {
    let bad = 0;
    const s = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) if (call() !== expect) bad++;
    const e = process.hrtime.bigint();
    if (bad) throw new Error(`${bad} calls of a batch did not return ${expect} ready`);
    samples.push(Number(e - s) / batch);
    calls += batch;
    if (samples.length > 100_000) break;
  }
  samples.sort((a, b) => a - b);
  return { nsPerCall: samples[samples.length >> 1], p10: samples[Math.floor(samples.length * 0.1)], p90: samples[Math.floor(samples.length * 0.9)], calls };
}

/**
 * Runs the whole matrix in this process; returns rows
 * {impl: 'asyncore-native', poller, registered, ready, nsPerCall, p10, p90, calls}.
 * `onCell(label)` is called before each cell (progress).
 */
export function runPollers({ sizes = POLLER_SIZES, cellMs = 600, onCell = () => {} } = {}) {
  const rows = [];
  for (const n of sizes) {
    const { socks, fds } = makeFds(n);
    try {
      const maxFd = Math.max(...fds);
      for (const mode of ['1', '10%']) {
        const k = mode === '1' ? 1 : Math.max(1, Math.round(n / 10));
        const ready = readyIndices(n, k);
        for (const i of ready) if (socks[i ^ 1].send(Buffer.from('x')) !== 1) throw new Error('could not make an fd ready');
        try {
          // select: the public API, lists of numbers.
          if (n <= SELECT_MAX) {
            onCell(`select N=${n} ready=${k}`);
            if (maxFd >= FD_SETSIZE) {
              rows.push({ impl: 'asyncore-native', poller: 'select', registered: n, ready: k, mode, na: `fd ${maxFd} >= FD_SETSIZE` });
            } else {
              const empty = [];
              const r = timeCell(() => select(fds, empty, empty, 0)[0].length, k, cellMs);
              rows.push({ impl: 'asyncore-native', poller: 'select', registered: n, ready: k, mode, ...r });
            }
          }
          const outFds = new Int32Array(n);
          const outEv = new Uint32Array(n);
          onCell(`poll N=${n} ready=${k}`);
          const p = new Poll();
          for (const fd of fds) p.register(fd, POLLIN);
          rows.push({ impl: 'asyncore-native', poller: 'poll', registered: n, ready: k, mode, ...timeCell(() => p.wait(0, outFds, outEv), k, cellMs) });
          onCell(`epoll N=${n} ready=${k}`);
          const ep = new Epoll();
          try {
            for (const fd of fds) ep.register(fd, EPOLLIN);
            rows.push({ impl: 'asyncore-native', poller: 'epoll', registered: n, ready: k, mode, ...timeCell(() => ep.wait(0, outFds, outEv), k, cellMs) });
          } finally {
            ep.close();
          }
        } finally {
          // Drain the byte again so the next mode starts from nothing ready.
          for (const i of ready) socks[i].recv(16);
        }
      }
    } finally {
      for (const s of socks) s.close();
    }
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: POLLER_SIZES.join(',') },
      'cell-ms': { type: 'string', default: '600' },
      json: { type: 'boolean', default: false },
    },
  });
  const rows = runPollers({
    sizes: values.sizes.split(',').map(Number),
    cellMs: Number(values['cell-ms']),
    onCell: (l) => process.stderr.write(`CELL ${l}\n`),
  });
  if (values.json) process.stdout.write(JSON.stringify(rows) + '\n');
  else console.table(rows.map(({ impl, ...r }) => ({ ...r, nsPerCall: r.nsPerCall && Math.round(r.nsPerCall) })));
}
