// The idle-connection holder: spawns bench/build/idler (bench/c/idler.c)
// against a port and speaks its line protocol.
//
//   const idler = await startIdler(port, { maxSeconds: 600 });
//   await idler.set(5000);        // resolves {held, seconds, connectErrors} once connected
//   await idler.status();         // {held, lost, bytes}
//   await idler.quit();           // closes every connection (RST) and waits for the exit
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { BUILD_DIR, buildC } from './peers.mjs';

export const IDLER = path.join(BUILD_DIR, 'idler');

/**
 * Spawns the idler against 127.0.0.1:`port` (building it if needed). Every
 * command waits for its one-line reply (at most `replyMs`; a missing reply
 * kills the idler and rejects). The idler stops itself after `maxSeconds`.
 * @returns {Promise<{proc, set(n: number): Promise<{held, seconds, connectErrors}>,
 *   status(): Promise<{held, lost, bytes}>, quit(): Promise<void>}>}
 */
export async function startIdler(port, { host = '127.0.0.1', maxSeconds = 1800, inflight = 128, replyMs = 130_000 } = {}) {
  buildC();
  const args = ['--host', host, '--port', String(port), '--max-seconds', String(Math.ceil(maxSeconds)), '--inflight', String(inflight), '--set-timeout', String(Math.floor(replyMs / 1000) - 10)];
  const proc = spawn(IDLER, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = [];
  createInterface({ input: proc.stdout }).on('line', (l) => waiting.shift()?.resolve(l));
  proc.once('exit', (code, signal) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`idler exited (code ${code}, signal ${signal})`));
  });
  proc.once('error', (e) => {
    for (const w of waiting.splice(0)) w.reject(e);
  });
  const reply = (ms) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`idler: no reply within ${ms} ms`));
      }, ms);
      waiting.push({ resolve: (l) => (clearTimeout(t), resolve(l)), reject: (e) => (clearTimeout(t), reject(e)) });
    });
  const send = (cmd, ms = replyMs) => {
    const p = reply(ms);
    proc.stdin.write(`${cmd}\n`);
    return p;
  };
  const first = await reply(5000);
  if (first !== 'READY') {
    proc.kill('SIGKILL');
    throw new Error(`idler: unexpected first line ${JSON.stringify(first)}`);
  }
  return {
    proc,
    async set(n) {
      const r = await send(`set ${n}`);
      const m = /^OK (\d+) (\S+) (\d+)$/.exec(r);
      if (!m) throw new Error(`idler: set ${n}: ${r}`);
      return { held: Number(m[1]), seconds: Number(m[2]), connectErrors: Number(m[3]) };
    },
    async status() {
      const r = await send('status', 5000);
      const m = /^STATUS (\d+) (\d+) (\d+)$/.exec(r);
      if (!m) throw new Error(`idler: status: ${r}`);
      return { held: Number(m[1]), lost: Number(m[2]), bytes: Number(m[3]) };
    },
    async quit() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise((r) => proc.once('exit', r));
      proc.stdin.end('quit\n');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    },
  };
}
