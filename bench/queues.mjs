#!/usr/bin/env node
// Output queues under a peer that reads late. Question answered: "does
// draining a long output queue cost the same per item at 200 000 items as at
// 50 000, and what does it cost next to Python's asynchat?" (an SMTP server
// fed pipelined commands by a client that reads nothing until the end).
//
//   node bench/queues.mjs [--sizes 50000,100000,200000] [--runs 3] [--backend poll]
//                         [--no-python] [--dist DIR] [--out FILE] [--no-write]
//
// Method (also in bench/README.md): an AF_UNIX socketpair; the sending end
// is a channel in its own map, the other end is the peer. The sending end's
// buffer is first filled with raw writes until EAGAIN, so everything the
// channel is then given queues. The clock starts; N items of 8 bytes
// ("250 OK\r\n") are pushed (AsyncChat#push) or sent (DispatcherWithSend#send);
// then single loop passes (timeout 0, --backend, default poll) run, the
// peer reading everything it can after each, until the peer has every byte
// (the filler and N × 8). The clock stops. Per item = that time / N. Python
// 3.11's asynchat.async_chat does the same in its own process (asyncore.loop
// with use_poll=True, count=1). Each (implementation, N) runs --runs times;
// the figure is the median. Every run checks that the peer got exactly the
// bytes pushed, and every loop has a time limit.
//
// --dist DIR measures another build of the library (e.g. an older commit's
// dist/) with the same method. Results: bench/results/queues.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    sizes: { type: 'string', default: '50000,100000,200000' },
    runs: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'poll' },
    'no-python': { type: 'boolean', default: false },
    dist: { type: 'string', default: path.join(here, '..', 'dist') },
    out: { type: 'string', default: path.join(here, 'results', 'queues.json') },
    'no-write': { type: 'boolean', default: false },
  },
});
const sizes = opts.sizes.split(',').map(Number);
const runs = Number(opts.runs);
const backend = opts.backend;
const lib = await import(pathToFileURL(path.join(path.resolve(opts.dist), 'index.js')).href);
const { AsyncChat, ChannelMap, DispatcherWithSend, closeAll, loop, socketpair, OSError, errno } = lib;

const ITEM = Buffer.from('250 OK\r\n');
/** No run may take longer than this (the quadratic queues of old builds take ~20 s at 200 000). */
const RUN_LIMIT_MS = 120_000;

class Chat extends AsyncChat {
  collectIncomingData() {}
  foundTerminator() {}
}

/** Fills `sock`'s send buffer with raw writes until EAGAIN; returns the bytes written. */
function fill(sock) {
  sock.setblocking(false);
  const blob = Buffer.alloc(65536, 0x2e);
  let n = 0;
  for (;;) {
    try {
      n += sock.send(blob);
    } catch (err) {
      if (err instanceof OSError && err.errno === errno.EAGAIN) return n;
      throw err;
    }
  }
}

/** Reads everything the peer has now (nonblocking); returns the byte count. */
function drainPeer(peer, sink) {
  let got = 0;
  for (;;) {
    let r;
    try {
      r = peer.recvInto(sink, sink.length);
    } catch (err) {
      if (err instanceof OSError && err.errno === errno.EAGAIN) return got;
      throw err;
    }
    if (r === 0) return got;
    got += r;
  }
}

/** One run: N items through `kind` ('AsyncChat' | 'DispatcherWithSend'); seconds and passes. */
function runOurs(kind, n) {
  const map = new ChannelMap();
  const [a, b] = socketpair();
  try {
    b.setblocking(false);
    const filler = fill(a);
    const ch = kind === 'AsyncChat' ? new Chat(a, map) : new DispatcherWithSend(a, map);
    const sink = Buffer.allocUnsafe(1 << 18);
    const want = filler + n * ITEM.length;
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    if (kind === 'AsyncChat') for (let i = 0; i < n; i++) ch.push(ITEM);
    else for (let i = 0; i < n; i++) ch.send(ITEM);
    let got = 0;
    let passes = 0;
    const limit = Date.now() + RUN_LIMIT_MS;
    while (got < want) {
      loop({ map, backend, timeout: 0, count: 1 });
      passes++;
      got += drainPeer(b, sink);
      if (Date.now() > limit) throw new Error(`${kind} ${n}: not drained after ${RUN_LIMIT_MS} ms`);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    if (got !== want) throw new Error(`${kind} ${n}: the peer got ${got} bytes, expected ${want}`);
    return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, passes };
  } finally {
    closeAll(map);
    a.close();
    b.close();
  }
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor((s.length - 1) / 2)];
}

function row(impl, n, results) {
  const seconds = median(results.map((r) => r.seconds));
  const cpuSeconds = median(results.map((r) => r.cpuSeconds));
  return {
    impl,
    n,
    seconds: +seconds.toFixed(4),
    usPerItem: +((seconds / n) * 1e6).toFixed(3),
    cpuUsPerItem: +((cpuSeconds / n) * 1e6).toFixed(3),
    passes: median(results.map((r) => r.passes)),
    runs: results.map((r) => +r.seconds.toFixed(4)),
  };
}

function python() {
  if (opts['no-python']) return { skipped: '--no-python' };
  const probe = spawnSync('python3.11', ['-W', 'ignore::DeprecationWarning', '-c', 'import asynchat, asyncore'], { encoding: 'utf8' });
  if (probe.status !== 0) return { skipped: `python3.11 with asynchat not available: ${probe.error?.message ?? probe.stderr.trim()}` };
  const out = execFileSync(
    'python3.11',
    ['-W', 'ignore::DeprecationWarning', path.join(here, 'peers', 'py_queues.py'), '--sizes', sizes.join(','), '--runs', String(runs)],
    { encoding: 'utf8', timeout: RUN_LIMIT_MS * sizes.length * runs },
  );
  return { rows: JSON.parse(out) };
}

const rows = [];
// A warm-up, so the first measured size does not pay for the JIT.
for (const kind of ['AsyncChat', 'DispatcherWithSend']) runOurs(kind, 10_000);
for (const kind of ['AsyncChat', 'DispatcherWithSend']) {
  for (const n of sizes) {
    const results = [];
    for (let r = 0; r < runs; r++) results.push(runOurs(kind, n));
    rows.push(row(kind, n, results));
    process.stderr.write(`${kind} ${n}: ${rows.at(-1).seconds} s\n`);
  }
}
const py = python();
if (py.rows) for (const r of py.rows) rows.push(row('python3.11 asynchat', r.n, r.results));
else process.stderr.write(`python rows skipped: ${py.skipped}\n`);

/**
 * CPU time per item at the largest size over the smallest: 1 is flat, about
 * 4 is quadratic (for 4× the items). CPU time, because a busy machine
 * inflates the wall clock of the longer runs more.
 */
const flatness = {};
for (const impl of new Set(rows.map((r) => r.impl))) {
  const mine = rows.filter((r) => r.impl === impl).sort((x, y) => x.n - y.n);
  flatness[impl] = +(mine.at(-1).cpuUsPerItem / mine[0].cpuUsPerItem).toFixed(2);
}

const result = {
  question: 'drain time per queued item, 8-byte items, by queue length',
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, kernel: os.release(), node: process.version },
  method: { itemBytes: ITEM.length, backend, runs, dist: path.relative(process.cwd(), path.resolve(opts.dist)) || '.' },
  rows,
  flatness,
  ...(py.skipped ? { pythonSkipped: py.skipped } : {}),
};

const lines = [
  '| implementation | items | drain s | µs per item | CPU µs per item | passes |',
  '|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.impl} | ${r.n.toLocaleString('en-US')} | ${r.seconds.toFixed(3)} | ${r.usPerItem.toFixed(2)} | ${r.cpuUsPerItem.toFixed(2)} | ${r.passes.toLocaleString('en-US')} |`,
  ),
  '',
  `CPU time per item at ${sizes.at(-1).toLocaleString('en-US')} over ${sizes[0].toLocaleString('en-US')} items (1 = flat): ` +
    Object.entries(flatness).map(([k, v]) => `${k} ${v}`).join(', '),
];
process.stdout.write(lines.join('\n') + '\n');
if (!opts['no-write']) {
  mkdirSync(path.dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n');
  process.stderr.write(`wrote ${path.relative(process.cwd(), opts.out)}\n`);
}
