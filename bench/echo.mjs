// Echo throughput: ping-pong through every echo server, driven by the C load
// generator. Question answered: "what does a message cost through our loop
// on each poller, next to Node's net, Python's asyncore/asyncio and a plain C
// epoll server?" Used by bench/run.mjs.
//
// Each run: loadgen opens C connections (ramp, each proven by one echo),
// then all of them ping-pong S-byte messages for a warm-up and a measured
// window; loadgen reports msgs/s in the window, its own CPU share, and the
// server's CPU over exactly the window (from /proc/<pid>/stat), from which
// server CPU per message. Runs go round-robin (round 1: every server, every
// cell; then round 2 …) so slow drift of the shared machine spreads over all
// servers instead of landing on one; each figure is the median over rounds.
import path from 'node:path';
import { availableParallelism } from 'node:os';
import { execFileSync } from 'node:child_process';
import { BENCH_DIR, PEERS, startServer, runLoad, waitForQuiet } from './lib/peers.mjs';
import { median } from './lib/report.mjs';

export const ECHO_CELLS = [
  { conns: 1, size: 64 },
  { conns: 100, size: 64 },
  { conns: 1000, size: 64 },
  { conns: 10, size: 16384 },
];
export const QUICK_ECHO_CELLS = [
  { conns: 100, size: 64 },
  { conns: 1000, size: 64 },
  { conns: 10, size: 16384 },
];

const FD_SETSIZE = 1024;
const OURS = path.join(BENCH_DIR, 'servers/asyncore_echo.mjs');

/** The servers, in table order. `python: true` rows need python3.11. */
export const ECHO_SERVERS = [
  { name: 'c-epoll', peer: 'c-epoll' },
  { name: 'loop/epoll', cmd: process.execPath, args: [OURS, '--backend', 'epoll'] },
  { name: 'loop/poll', cmd: process.execPath, args: [OURS, '--backend', 'poll'] },
  { name: 'loop/select', cmd: process.execPath, args: [OURS, '--backend', 'select'], select: true },
  { name: 'loopAsync/epoll', cmd: process.execPath, args: [OURS, '--backend', 'epoll', '--async'] },
  { name: 'node-net', peer: 'node-net' },
  { name: 'py-asyncore', peer: 'py-asyncore', python: true },
  { name: 'py-asyncio', peer: 'py-asyncio', python: true },
];

/** null when python3.11 runs, else the reason the Python rows are skipped. */
export function pythonMissing() {
  try {
    execFileSync('python3.11', ['-c', 'import asyncore, asyncio'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PYTHONWARNINGS: 'ignore' },
    });
    return null;
  } catch (e) {
    return e.code === 'ENOENT' ? 'python3.11 not found on PATH' : `python3.11 cannot import asyncore/asyncio (${String(e.stderr ?? e.message).trim().split('\n').pop()})`;
  }
}

function start(server) {
  if (server.peer) {
    const { cmd, args } = PEERS[server.peer]();
    return startServer(cmd, [...args, '--host', '127.0.0.1', '--port', '0']);
  }
  return startServer(server.cmd, server.args);
}

const cellKey = (c) => `${c.conns}x${c.size}`;

/** The server's fd count once it has not changed for 300 ms (at most 3 s). */
async function settledFdCount(srv) {
  let last = srv.fdCount();
  for (let stable = 0, t = 0; stable < 6 && t < 60; t++) {
    await new Promise((r) => setTimeout(r, 50));
    const now = srv.fdCount();
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
  return last;
}

/** Server processes running now (bench/run.mjs kills them if it is interrupted). */
export const liveServers = new Set();

/**
 * Runs every server × cell `runs` times (round-robin) and returns
 * {rows, runs: raw loadgen results, skipped: [{server, reason}]}.
 * A row: {server, conns, size, msgsPerSec, serverCpuPerMsgUs, serverCpu,
 * clientCpu, p50Us, p99Us, errors, runs, disturbed, other, ratioToC,
 * cpuRatioToC} or {server, conns, size, na: reason}.
 */
export async function runEcho({
  cells = ECHO_CELLS,
  servers = ECHO_SERVERS,
  runs = 3,
  duration = 2,
  warmup = 0.5,
  quietMaxWaitMs = 20_000,
  /** Waits for a quiet machine before each run; default: waitForQuiet up to quietMaxWaitMs. */
  quiet = () => waitForQuiet({ maxWaitMs: quietMaxWaitMs }),
  skipPython = null,
  onProgress = () => {},
} = {}) {
  const ncpu = availableParallelism();
  const raw = [];
  const na = new Map(); // "server|cell" → reason
  const skipped = [];
  const active = servers.filter((s) => {
    if (s.python && skipPython) {
      skipped.push({ server: s.name, reason: skipPython });
      return false;
    }
    return true;
  });
  const total = runs * active.length * cells.length;
  let done = 0;
  for (let round = 1; round <= runs; round++) {
    for (const s of active) {
      let srv;
      try {
        srv = await start(s);
        liveServers.add(srv.proc);
        // The resting fd count, once the server has settled: the loop opens its
        // poller (an epoll fd, libuv's) after printing its port, so a count taken
        // at once can be one short, and every cell would then wait its full 10 s
        // below for a count that never comes back.
        const baseFds = await settledFdCount(srv);
        for (const cell of cells) {
          const key = `${s.name}|${cellKey(cell)}`;
          done++;
          if (na.has(key)) continue;
          // The previous cell's connections may still be closing on the
          // server side: wait (at most 10 s) until its fd count is back.
          for (let t = 0; t < 50 && srv.fdCount() > baseFds; t++) await new Promise((r) => setTimeout(r, 200));
          if (s.select) {
            // Every new connection takes the next free fd number; the server
            // would end up with fds >= FD_SETSIZE, which select(2) cannot watch.
            const base = srv.fdCount();
            if (base + cell.conns >= FD_SETSIZE) {
              na.set(key, `select(2) cannot watch fd >= FD_SETSIZE (${FD_SETSIZE}): ${base} fds open + ${cell.conns} connections`);
              continue;
            }
          }
          onProgress(`echo round ${round}/${runs}  ${s.name} ${cell.conns}x${cell.size}  (${done}/${total})`);
          const q = await quiet();
          // A run disturbed by other processes (> 0.25 core busy besides
          // loadgen and the server) is retried once.
          let r;
          for (let attempt = 0; attempt < 2; attempt++) {
            r = await runLoad({ port: srv.port, conns: cell.conns, size: cell.size, duration, warmup, server: srv });
            r.other = r.hostBusyShare * ncpu - r.clientCpuShare - (r.serverCpuShare ?? 0);
            r.quietIdle = q.idle;
            if (r.other <= 0.25) break;
          }
          if (r.connected !== cell.conns) r.problem = `only ${r.connected} of ${cell.conns} connections proven at window start`;
          if (srv.proc.exitCode !== null || srv.proc.signalCode !== null) throw new Error(`${s.name} exited during ${cellKey(cell)}`);
          raw.push({ server: s.name, round, ...cell, rssKiB: srv.rssKiB(), ...r });
        }
      } catch (err) {
        for (const cell of cells) {
          const key = `${s.name}|${cellKey(cell)}`;
          if (!na.has(key) && !raw.some((r) => r.server === s.name && r.conns === cell.conns && r.size === cell.size)) {
            na.set(key, `failed: ${String(err.message ?? err).split('\n')[0]}`);
          }
        }
      } finally {
        if (srv) {
          await srv.stop();
          liveServers.delete(srv.proc);
        }
      }
    }
  }

  const rows = [];
  for (const s of active) {
    for (const cell of cells) {
      const key = `${s.name}|${cellKey(cell)}`;
      const rs = raw.filter((r) => r.server === s.name && r.conns === cell.conns && r.size === cell.size);
      if (!rs.length) {
        rows.push({ server: s.name, ...cell, na: na.get(key) ?? 'no run' });
        continue;
      }
      rows.push({
        server: s.name,
        ...cell,
        msgsPerSec: median(rs.map((r) => r.msgsPerSec)),
        serverCpuPerMsgUs: median(rs.map((r) => r.serverCpuPerMsgUs)),
        serverCpu: median(rs.map((r) => r.serverCpuShare)),
        clientCpu: median(rs.map((r) => r.clientCpuShare)),
        p50Us: median(rs.map((r) => r.rttP50Us)),
        p99Us: median(rs.map((r) => r.rttP99Us)),
        rssMiB: median(rs.map((r) => r.rssKiB / 1024)),
        errors: rs.reduce((a, r) => a + r.errors, 0),
        runs: rs.length,
        disturbed: rs.filter((r) => r.other > 0.25).length,
        other: Math.max(...rs.map((r) => r.other)),
        problems: [...new Set(rs.map((r) => r.problem).filter(Boolean))].join('; ') || undefined,
      });
    }
  }
  for (const r of rows) {
    const c = rows.find((x) => x.server === 'c-epoll' && x.conns === r.conns && x.size === r.size);
    if (r.na || !c || c.na) continue;
    r.ratioToC = r.msgsPerSec / c.msgsPerSec;
    r.cpuRatioToC = r.serverCpuPerMsgUs / c.serverCpuPerMsgUs;
  }
  return { rows, raw, skipped };
}
