#!/usr/bin/env node
// Delayed calls: how late do they run, and what does one cost?
//
//   node bench/timers.mjs [--quick] [--out DIR]
//
// Questions answered:
// 1. Lateness: 10 000 callLater calls spread evenly over 2 s (--quick: 2 000
//    over 0.5 s), each recording now() - deadline when it runs, on an idle
//    loop and beside an echo load, for loop() on select, poll, epoll and a
//    selector object, and for loopAsync (epoll). Node's own setTimeout with
//    the same offsets, in the same run, is the reference row (idle: nothing
//    else running; echo: beside the same load driven by loopAsync). Figures:
//    p50 / p99 / max lateness in ms, and the minimum (negative = early: our
//    calls never are; Node's timers keep whole milliseconds and can be).
// 2. Cost: schedule + cancel one call (callLater + cancel) against
//    setTimeout + clearTimeout, ns per pair, with 0 and 100 000 other calls
//    (timers) pending; median of 7 batches.
//
// The echo load: 8 socketpairs in the loop's map, each bouncing a 256-byte
// message as fast as the loop turns (a pass always has ready channels). Its
// round trips are counted and must be > 0 (the run checks it did the work).
// Writes DIR/timers.json (default bench/results/, bench/results/quick/ with
// --quick) and prints the tables as markdown (bench/README.md has a copy).
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChannelMap, DispatcherWithSend, EpollSelector, callLater, closeAll, loop, loopAsync, socketpair } from '../dist/index.js';
import { machineInfo, median, table } from './lib/report.mjs';
import { waitForQuiet } from './lib/peers.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } } });
const quick = opt.quick;
const CALLS = quick ? 2000 : 10_000;
const SPREAD_S = quick ? 0.5 : 2;
const PAIRS = 8;
const outDir = path.resolve(opt.out ?? path.join(BENCH_DIR, 'results', quick ? 'quick' : ''));
const now = () => performance.now() / 1000;

// ------------------------------------------------------------ the echo load

class Echo extends DispatcherWithSend {
  handleRead() {
    const d = this.recv(65536);
    if (d.length) this.send(d);
  }
  handleClose() {
    this.close();
  }
}

class Ping extends DispatcherWithSend {
  rounds = 0;
  got = 0;
  msg = Buffer.alloc(256, 1);
  handleRead() {
    this.got += this.recv(65536).length;
    while (this.got >= 256) {
      this.got -= 256;
      this.rounds++;
      this.send(this.msg);
    }
  }
  handleClose() {
    this.close();
  }
}

/** Fills `map` with the echo load; returns a function giving the round trips so far. */
function echoLoad(map) {
  const pings = [];
  for (let i = 0; i < PAIRS; i++) {
    const [a, b] = socketpair();
    a.setblocking(false);
    b.setblocking(false);
    new Echo(a, map);
    const p = new Ping(b, map);
    p.send(p.msg);
    pings.push(p);
  }
  return () => pings.reduce((n, p) => n + p.rounds, 0);
}

// ------------------------------------------------------------ lateness

function percentiles(ms) {
  const s = Float64Array.from(ms).sort();
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1], min: s[0] };
}

/** Schedules the calls on `map`; the last one (plus a margin) ends the load. */
function scheduleCalls(map, lateness, onLast) {
  const step = SPREAD_S / CALLS;
  for (let i = 0; i < CALLS; i++) {
    const c = callLater((i + 1) * step, () => {
      lateness.push((now() - c.deadline) * 1000);
      if (lateness.length === CALLS) onLast();
    }, { map });
  }
}

async function ourCell(runner, load) {
  const map = new ChannelMap();
  const rounds = load ? echoLoad(map) : () => 0;
  const lateness = [];
  let selector = null;
  scheduleCalls(map, lateness, () => closeAll(map));
  const t0 = now();
  if (runner === 'loopAsync') await loopAsync({ map, backend: 'epoll', timeout: null });
  else {
    if (runner === 'selector') selector = new EpollSelector();
    loop({ map, backend: selector ?? runner, timeout: null });
    selector?.close();
  }
  const elapsed = now() - t0;
  if (lateness.length !== CALLS) throw new Error(`${runner}: ${lateness.length} of ${CALLS} calls ran`);
  if (load && rounds() === 0) throw new Error(`${runner}: the echo load did no work`);
  return { ...percentiles(lateness), echoPerSec: load ? Math.round(rounds() / elapsed) : null };
}

/** Node's setTimeout with the same offsets (fractional ms as given; Node keeps whole ms). */
async function nodeCell(load) {
  const map = new ChannelMap();
  const rounds = load ? echoLoad(map) : () => 0;
  const lateness = [];
  const step = (SPREAD_S * 1000) / CALLS;
  const t0 = performance.now();
  const running = load ? loopAsync({ map, backend: 'epoll', timeout: null }) : Promise.resolve();
  await new Promise((resolve) => {
    for (let i = 0; i < CALLS; i++) {
      // Counted from its own scheduling, as a DelayedCall's deadline is.
      const target = performance.now() + (i + 1) * step;
      setTimeout(() => {
        lateness.push(performance.now() - target);
        if (lateness.length === CALLS) resolve();
      }, (i + 1) * step);
    }
  });
  const elapsed = (performance.now() - t0) / 1000;
  const r = rounds();
  closeAll(map);
  await running;
  if (load && r === 0) throw new Error('setTimeout: the echo load did no work');
  return { ...percentiles(lateness), echoPerSec: load ? Math.round(r / elapsed) : null };
}

// ------------------------------------------------------------ cost

function pairCost(kind, pending) {
  const map = new ChannelMap();
  const cb = () => {};
  const others = [];
  for (let i = 0; i < pending; i++) others.push(kind === 'ours' ? callLater(3600, cb, { map }) : setTimeout(cb, 3_600_000));
  const N = quick ? 50_000 : 200_000;
  const batches = [];
  for (let b = 0; b < 7; b++) {
    const t0 = process.hrtime.bigint();
    if (kind === 'ours') for (let i = 0; i < N; i++) callLater(1 + i * 1e-6, cb, { map }).cancel();
    else for (let i = 0; i < N; i++) clearTimeout(setTimeout(cb, 1000 + (i & 1023)));
    batches.push(Number(process.hrtime.bigint() - t0) / N);
  }
  for (const o of others) kind === 'ours' ? o.cancel() : clearTimeout(o);
  return median(batches.slice(1)); // the first batch warms up
}

// ------------------------------------------------------------ run

const runners = ['select', 'poll', 'epoll', 'selector', 'loopAsync'];
const rows = [];
await ourCell('epoll', false); // warm-up (JIT), not recorded
/** Waits for a quiet machine (the cores are shared), then runs `cell`; records how quiet it was. */
async function measured(label, load, cell) {
  const q = await waitForQuiet({ minIdle: 0.8, maxWaitMs: 15_000 });
  process.stderr.write(`lateness: ${label}, ${load ? 'echo load' : 'idle'}${q.quiet ? '' : ` (machine busy: ${(100 * q.idle).toFixed(0)} % idle)`}\n`);
  return { ...(await cell()), hostIdle: Number(q.idle.toFixed(2)) };
}
for (const load of [false, true]) {
  for (const r of runners) {
    const name = r === 'selector' ? 'loop() selector object' : r === 'loopAsync' ? 'loopAsync (epoll)' : `loop() ${r}`;
    rows.push({ loop: name, load: load ? 'echo' : 'idle', ...(await measured(name, load, () => ourCell(r, load))) });
  }
  rows.push({ loop: 'Node setTimeout (reference)', load: load ? 'echo (loopAsync)' : 'idle', ...(await measured('setTimeout', load, () => nodeCell(load))) });
}
const cost = [];
for (const pending of [0, 100_000]) {
  process.stderr.write(`cost: ${pending} pending\n`);
  cost.push({ pending, callLaterCancelNs: pairCost('ours', pending), setTimeoutClearNs: pairCost('node', pending) });
}

const f = (x) => (x === null ? '' : x.toFixed(3));
const latTable = rows.map((r) => ({
  loop: r.loop, load: r.load, 'p50 ms': f(r.p50), 'p99 ms': f(r.p99), 'max ms': f(r.max), 'min ms': f(r.min),
  'echo round trips/s': r.echoPerSec === null ? '' : String(r.echoPerSec),
  'host idle before': `${Math.round(100 * r.hostIdle)} %`,
}));
const costTable = cost.map((c) => ({
  'other calls pending': String(c.pending),
  'callLater + cancel (ns)': c.callLaterCancelNs.toFixed(0),
  'setTimeout + clearTimeout (ns)': c.setTimeoutClearNs.toFixed(0),
}));
const command = `node bench/timers.mjs${quick ? ' --quick' : ''}`;
mkdirSync(outDir, { recursive: true });
writeFileSync(
  path.join(outDir, 'timers.json'),
  JSON.stringify({ command, date: new Date().toISOString(), machine: machineInfo(), calls: CALLS, spreadSeconds: SPREAD_S, echoPairs: PAIRS, lateness: rows, cost }, null, 2) + '\n',
);
process.stdout.write(`## Timer lateness (${CALLS} calls over ${SPREAD_S} s; ${command})\n\n${table(latTable, { markdown: true })}\n`);
process.stdout.write(`## Cost of one delayed call\n\n${table(costTable, { markdown: true })}\n`);
process.stdout.write(`results: ${path.join(outDir, 'timers.json')}\n`);
