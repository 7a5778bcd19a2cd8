// Sanity run of the benchmark peers: every reference echo server against the
// C load generator, over a small matrix, as a table. Exits 1 on any error.
//
//   node bench/peers-check.mjs [--duration 2] [--warmup 0.5] [--repeat 1]
//        [--peers c-epoll,node-net,py-asyncore,py-asyncio] [--markdown]
//
// Each run waits for the machine to be quiet first. With --repeat N, the run
// with the highest msgs/s is kept: on a shared machine the noise is other
// work stealing CPU, which only ever lowers throughput.
// "other cpu" = cores busy during the window minus loadgen, server and
// softirq: anything well above 0 means a foreign process disturbed the run.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { buildC, startPeer, runLoad, waitForQuiet, PEERS } from './lib/peers.mjs';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '0.5' },
    peers: { type: 'string', default: Object.keys(PEERS).join(',') },
    repeat: { type: 'string', default: '1' },
    markdown: { type: 'boolean', default: false },
  },
});
const duration = Number(values.duration);
const warmup = Number(values.warmup);
const repeat = Math.max(1, Number(values.repeat));
const ncpu = availableParallelism();
const MATRIX = [
  { conns: 1, size: 64 },
  { conns: 100, size: 64 },
  { conns: 1000, size: 64 },
  { conns: 10, size: 16384 },
];

buildC();
const rows = [];
let failed = false;
for (const name of values.peers.split(',')) {
  const srv = await startPeer(name);
  for (const { conns, size } of MATRIX) {
    let r;
    for (let i = 0; i < repeat; i++) {
      const q = await waitForQuiet();
      if (!q.quiet) console.error(`warning: machine not quiet (idle ${q.idle.toFixed(2)}) for ${name} ${conns}x${size}`);
      const ri = await runLoad({ port: srv.port, conns, size, duration, warmup, server: srv });
      if (ri.errors || ri.timedOut) failed = true;
      if (!r || ri.msgsPerSec > r.msgsPerSec) r = ri;
    }
    const other = (r.hostBusyShare - r.hostSoftirqShare) * ncpu - r.clientCpuShare - (r.serverCpuShare ?? 0);
    rows.push({
      peer: name,
      conns,
      size,
      'msgs/s': Math.round(r.msgsPerSec),
      errors: r.errors,
      'p50 us': r.rttP50Us,
      'p99 us': r.rttP99Us,
      'srv us/msg': r.serverCpuPerMsgUs?.toFixed(2),
      'srv cpu': r.serverCpuShare?.toFixed(2),
      'cli cpu': r.clientCpuShare.toFixed(2),
      softirq: (r.hostSoftirqShare * ncpu).toFixed(2),
      'other cpu': other.toFixed(2),
      'srv RSS MiB': (srv.rssKiB() / 1024).toFixed(1),
    });
    if (r.errors || r.timedOut || r.connected !== conns) failed = true;
  }
  const { code, signal } = await srv.stop();
  if (code !== 0) {
    console.error(`${name}: exit code ${code} signal ${signal} on SIGTERM`);
    failed = true;
  }
}

if (values.markdown) {
  const cols = Object.keys(rows[0]);
  console.log(`| ${cols.join(' | ')} |`);
  console.log(`|${cols.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${cols.map((c) => r[c]).join(' | ')} |`);
} else {
  console.table(rows);
}
process.exit(failed ? 1 : 0);
