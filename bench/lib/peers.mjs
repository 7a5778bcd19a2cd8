// Benchmark peer helpers: build the C tools, start echo servers, drive them
// with the C load generator, and read a server's CPU/RSS/fd use from /proc.
//
//   import { buildC, startPeer, runLoad } from './lib/peers.mjs';
//   buildC();
//   const srv = await startPeer('c-epoll');
//   const r = await runLoad({ port: srv.port, conns: 100, size: 64,
//                             duration: 2, warmup: 0.5, server: srv });
//   // r.msgsPerSec, r.errors, r.serverCpuPerMsgUs (server CPU over the same window)
//   await srv.stop();
//
// Linux only (/proc). Plain ESM, no dependencies.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD_DIR = path.join(BENCH_DIR, 'build');
export const LOADGEN = path.join(BUILD_DIR, 'loadgen');
export const ECHO_EPOLL = path.join(BUILD_DIR, 'echo_epoll');

/**
 * Build bench/build/{loadgen,echo_epoll} if missing or older than their
 * sources (make decides; the flags live in bench/c/Makefile only).
 * Synchronous; throws with the compiler output on failure.
 * @returns {{loadgen: string, echoEpoll: string}}
 */
export function buildC({ force = false, quiet = true } = {}) {
  const args = ['-C', path.join(BENCH_DIR, 'c')];
  if (force) args.push('-B');
  if (quiet) args.push('-s');
  execFileSync('make', args, { stdio: ['ignore', quiet ? 'pipe' : 'inherit', 'inherit'] });
  return { loadgen: LOADGEN, echoEpoll: ECHO_EPOLL };
}

let clkTck;
/** Clock ticks per second for /proc/<pid>/stat times (`getconf CLK_TCK`, cached). */
export function clockTicks() {
  if (clkTck === undefined) {
    clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  }
  return clkTck;
}

/**
 * User+system CPU seconds used so far by process `pid` (all its threads),
 * from /proc/<pid>/stat fields 14 (utime) and 15 (stime). Resolution is one
 * clock tick (10 ms at CLK_TCK 100). Returns NaN if the process is gone.
 */
export function cpuTime(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return NaN;
  }
  // comm (field 2) may hold spaces or ')', so split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  return (Number(rest[11]) + Number(rest[12])) / clockTicks();
}

/** Resident set size of `pid` in KiB (VmRSS from /proc/<pid>/status), NaN if gone. */
export function rssKiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Number of open fds of `pid` (entries in /proc/<pid>/fd), NaN if gone. */
export function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/**
 * Whole-machine CPU counters from /proc/stat (ticks): {total, idle, softirq}.
 * idle includes iowait.
 */
export function hostCpuSample() {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return { total: v.reduce((a, b) => a + b, 0), idle: v[3] + v[4], softirq: v[6] };
}

/**
 * Wait until the machine is quiet: idle share >= minIdle over a `windowMs`
 * sample (1 = all cores idle). Benchmarks share this 2-core machine with
 * builds and tests; a throughput number taken while something else runs is
 * noise. Resolves {idle, waitedMs, quiet}; never rejects — after maxWaitMs it
 * resolves with quiet: false so the caller can flag the result.
 */
export async function waitForQuiet({ minIdle = 0.9, windowMs = 300, maxWaitMs = 30_000 } = {}) {
  const t0 = Date.now();
  for (;;) {
    const a = hostCpuSample();
    await new Promise((r) => setTimeout(r, windowMs));
    const b = hostCpuSample();
    const idle = b.total > a.total ? (b.idle - a.idle) / (b.total - a.total) : 1;
    const waitedMs = Date.now() - t0;
    if (idle >= minIdle) return { idle, waitedMs, quiet: true };
    if (waitedMs >= maxWaitMs) return { idle, waitedMs, quiet: false };
  }
}

/**
 * Known echo peers. Each entry gives the command; startPeer() appends
 * `--host <host> --port <port>`.
 */
export const PEERS = {
  'c-epoll': () => ({ cmd: ECHO_EPOLL, args: [] }),
  'node-net': () => ({ cmd: process.execPath, args: [path.join(BENCH_DIR, 'peers/node_net_echo.mjs')] }),
  'py-asyncore': () => ({
    cmd: 'python3.11',
    args: ['-W', 'ignore::DeprecationWarning', path.join(BENCH_DIR, 'peers/py_asyncore_echo.py')],
  }),
  'py-asyncio': () => ({ cmd: 'python3.11', args: [path.join(BENCH_DIR, 'peers/py_asyncio_echo.py')] }),
};

/**
 * Spawn a server and wait for its `LISTENING <port>` line on stdout (or, with
 * `ready`, the first match of that RegExp, whose group 1 is the port).
 * @param {string} cmd
 * @param {string[]} args
 * @param {{timeoutMs?: number, env?: object, cwd?: string, stderr?: 'inherit'|'ignore', ready?: RegExp}} [opts]
 * @returns {Promise<{port: number, pid: number, proc: import('node:child_process').ChildProcess,
 *   stop: (timeoutMs?: number) => Promise<{code: number|null, signal: string|null}>,
 *   cpuTime: () => number, rssKiB: () => number, fdCount: () => number}>}
 */
export function startServer(cmd, args = [], opts = {}) {
  const { timeoutMs = 10_000, env = process.env, cwd = BENCH_DIR, stderr = 'inherit', ready = /^LISTENING (\d+)\s*$/m } = opts;
  const proc = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', stderr] });
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });

  return new Promise((resolve, reject) => {
    let buf = '';
    let done = false;
    const fail = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new Error(`${cmd}: no LISTENING line within ${timeoutMs} ms (got ${JSON.stringify(buf)})`)),
      timeoutMs,
    );
    proc.once('error', fail);
    proc.once('exit', (code, signal) => fail(new Error(`${cmd} exited early (code ${code}, signal ${signal})`)));
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk) => {
      if (done) return; // keep draining so a chatty server never blocks on a full pipe
      buf += chunk;
      const m = ready.exec(buf);
      if (!m) return;
      done = true;
      clearTimeout(timer);
      const pid = proc.pid;
      resolve({
        port: Number(m[1]),
        pid,
        proc,
        cpuTime: () => cpuTime(pid),
        rssKiB: () => rssKiB(pid),
        fdCount: () => fdCount(pid),
        // SIGTERM, then SIGKILL if the server has not exited after timeoutMs.
        async stop(stopTimeoutMs = 3000) {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), stopTimeoutMs);
          const res = await exited;
          clearTimeout(t);
          return res;
        },
      });
    });
  });
}

/**
 * Start one of PEERS by name on host (default 127.0.0.1) and port (default 0).
 * Builds the C tools first if needed.
 */
export function startPeer(name, { host = '127.0.0.1', port = 0, ...opts } = {}) {
  const make = PEERS[name];
  if (!make) throw new Error(`unknown peer ${name}; known: ${Object.keys(PEERS).join(', ')}`);
  if (name === 'c-epoll') buildC();
  const { cmd, args } = make();
  return startServer(cmd, [...args, '--host', host, '--port', String(port)], opts);
}

/**
 * Run the C load generator once and return its parsed JSON result:
 * {conns, size, msgs, seconds, msgsPerSec, errors, clientCpuUser, clientCpuSys,
 *  clientCpuShare, connected, connectSeconds, connectErrors, resetErrors,
 *  eofErrors, mismatchErrors, rttP50Us, rttP99Us, rttP999Us, hostBusyShare,
 *  hostSoftirqShare, timedOut}
 * plus, when `server` or `serverPid` is given, {serverCpu, serverCpuUser,
 * serverCpuSys, serverCpuShare, serverCpuPerMsgUs}: the server's CPU read by
 * loadgen at the exact edges of the measure window.
 * Shares: client/server = CPU seconds per wall second (1 = one core busy);
 * host* = fraction of the whole machine (1 = every core busy).
 *
 * Timeline: ramp (open every connection, prove each with one echo, then park
 * it; `connectSeconds`), then load on all at once, `warmup` seconds, then the
 * `duration`-second window. `connected` counts connections proven when the
 * window opened; less than `conns` means the server accepted too slowly for
 * `connectTimeout` (default 8 s; the window then runs with what it has).
 * Rejects if loadgen exits non-zero or prints no JSON; never hangs longer than
 * connectTimeout + warmup + duration + 20 s (loadgen stops itself sooner).
 */
export function runLoad({
  host = '127.0.0.1',
  port,
  unix,
  conns = 1,
  size = 64,
  duration = 2,
  warmup = 0.5,
  connectRate,
  connectInflight,
  connectTimeout,
  server,
  serverPid = server?.pid,
  extraArgs = [],
} = {}) {
  buildC();
  const args = unix ? ['--unix', unix] : ['--host', host, '--port', String(port)];
  args.push('--conns', String(conns), '--size', String(size), '--duration', String(duration), '--warmup', String(warmup));
  if (connectRate) args.push('--connect-rate', String(connectRate));
  if (connectInflight) args.push('--connect-inflight', String(connectInflight));
  if (connectTimeout !== undefined) args.push('--connect-timeout', String(connectTimeout));
  if (serverPid) args.push('--server-pid', String(serverPid));
  args.push(...extraArgs);

  return new Promise((resolve, reject) => {
    const proc = spawn(LOADGEN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (c) => (out += c));
    proc.stderr.setEncoding('utf8').on('data', (c) => (err += c));
    // loadgen's own hard stop is connect timeout + warmup + duration + 10 s.
    const limitMs = ((connectTimeout ?? 8) + warmup + duration + 20) * 1000;
    const timer = setTimeout(() => proc.kill('SIGKILL'), limitMs);
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) {
        reject(new Error(`loadgen ${args.join(' ')} failed (code ${code}, signal ${signal}): ${err.trim()}`));
        return;
      }
      const res = JSON.parse(line);
      if (err.trim()) res.stderr = err.trim();
      resolve(res);
    });
  });
}
