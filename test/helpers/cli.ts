/**
 * Spawning the built CLI (dist/cli/main.js, compiled by the global setup) and
 * talking to it: wait for its "listening on ADDR" line, collect stderr, stop
 * it with a signal and read its exit status. Every child is killed by
 * `killAll()` (call it in afterEach / finally).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const cliPath = path.join(root, 'dist/cli/main.js');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliProcess {
  child: ChildProcess;
  /** The address printed on stdout ("listening on ADDR"). */
  address: string;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process exits. */
  exited: Promise<Exit>;
  /** Sends `signal` and waits (at most `ms`) for the exit. */
  stop(signal?: NodeJS.Signals, ms?: number): Promise<Exit>;
}

const live = new Set<ChildProcess>();

/** The environment of a started program: under the sanitizer run, without its exit-time leak check (scripts/test-asan.mjs says why). */
function childEnv(): NodeJS.ProcessEnv {
  const o = process.env.ASYNCORE_ASAN_CHILD_OPTIONS;
  return o ? { ...process.env, ASAN_OPTIONS: o } : process.env;
}

/** Kills every child still running (SIGKILL). */
export function killAll(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  live.clear();
}

/** Runs the CLI to completion (for --help and bad arguments): status, stdout, stderr. */
export function runCli(args: string[], ms = 10_000): Promise<Exit & { stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
    live.add(child);
    let out = '', err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`asyncore-native ${args.join(' ')} did not exit within ${ms} ms`));
    }, ms);
    child.on('close', (code, signal) => {
      clearTimeout(t);
      live.delete(child);
      resolve({ code, signal, stdout: out, stderr: err });
    });
  });
}

/**
 * Starts `node script ...args` and waits (at most `ms`) for its
 * "listening on ADDR" line on stdout: the same contract as the CLI's
 * servers (`startCli`), for any program that keeps it.
 */
export function startProgram(script: string, args: string[], ms = 10_000): Promise<CliProcess> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  live.add(child);
  let out = '', err = '';
  const exited = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => {
      live.delete(child);
      // Killed by a signal we did not send (an abort from a sanitizer, a crash): show why.
      if (signal !== null && signal !== 'SIGKILL' && err.includes('Sanitizer')) process.stderr.write(`${script} died of ${signal}:\n${err.slice(-4000)}\n`);
      resolve({ code, signal });
    }),
  );
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', waitMs = 10_000): Promise<Exit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`no exit within ${waitMs} ms after ${signal}`)), waitMs);
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  return new Promise((resolve, reject) => {
    let waiting = true;
    const t = setTimeout(() => {
      waiting = false;
      child.kill('SIGKILL');
      reject(new Error(`no "listening on" from ${script} ${args.join(' ')} within ${ms} ms; stderr: ${err}`));
    }, ms);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)\n/.exec(out);
      if (m && waiting) {
        waiting = false;
        clearTimeout(t);
        resolve({ child, address: m[1]!, stdout: () => out, stderr: () => err, exited, stop });
      }
    });
    child.on('close', (code) => {
      if (!waiting) return;
      waiting = false;
      clearTimeout(t);
      reject(new Error(`${script} ${args.join(' ')} exited (${code}) before listening; stderr: ${err}`));
    });
  });
}

/** Starts a CLI server and waits (at most `ms`) for its "listening on" line. */
export function startCli(args: string[], ms = 10_000): Promise<CliProcess> {
  return startProgram(cliPath, args, ms);
}

/** `HOST:PORT`, `[V6]:PORT` or `unix:PATH` → node:net connect options. */
export function netTarget(address: string): net.NetConnectOpts {
  if (address.startsWith('unix:')) return { path: address.slice(5) };
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(address)!;
  return { host: m[1]!, port: Number(m[2]) };
}

/** The port of a `HOST:PORT` / `[V6]:PORT` address. */
export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** Resident memory of `pid` in bytes (VmRSS from /proc), or 0 once it is gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Clock ticks per second of /proc/<pid>/stat's times (sysconf(_SC_CLK_TCK)). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user + system) `pid` has used so far, from /proc/<pid>/stat
 * (utime and stime, the 14th and 15th fields, counted after the `(comm)`
 * field, which may itself contain spaces); throws once the process is gone.
 */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Connects with node:net; rejects after `ms`. */
export function connect(address: string, ms = 5000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(netTarget(address));
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect to ${address} timed out`));
    }, ms);
    s.once('connect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** Everything `s` sends until EOF (or an error / `ms`), as one Buffer; `error` tells how it ended. */
export function readAll(s: net.Socket, ms = 10_000): Promise<{ data: Buffer; error: string | null }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const t = setTimeout(() => finish('timeout'), ms);
    const finish = (error: string | null) => {
      clearTimeout(t);
      s.removeAllListeners('data');
      resolve({ data: Buffer.concat(chunks), error });
      if (error === 'timeout') s.destroy();
    };
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => finish(null));
    s.once('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    s.once('close', () => finish(null));
    s.resume(); // a socket paused by an earlier reader stays paused when a 'data' listener is added
  });
}
