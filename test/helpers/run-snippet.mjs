// Runs one documentation code block as a program and judges it; used by
// test/docs-snippets.test.ts (which explains the conventions), inside a
// private network namespace when the machine allows one.
//
//   node run-snippet.mjs DIR FILE
//
// Starts `node FILE` in DIR, then:
// - it exits by itself within EXIT_MS: it passes with code 0;
// - it listens on TCP ports (its own sockets, read from /proc): each port
//   gets a real client that sends PROBE and must read it back (an echo, in
//   any case) or an HTTP response; then SIGINT, and the program must be gone
//   within STOP_MS (exit code 0, or killed by the SIGINT it did not handle).
// Prints one JSON line: { ok, why, ports, code, signal, stdout, stderr, ms }.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';

const [dir, file] = process.argv.slice(2);
const EXIT_MS = 20_000;
const STOP_MS = 5_000;
const PROBE = 'GET / HTTP/1.0\r\n\r\n';
const PROBE_MS = 3_000;

const env = { ...process.env };
// The wrapper ran without the sanitizer runtime; the program gets it back.
if (env.SNIPPET_LD_PRELOAD) env.LD_PRELOAD = env.SNIPPET_LD_PRELOAD;
delete env.SNIPPET_LD_PRELOAD;

const t0 = performance.now();
const child = spawn(process.execPath, [file], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
let stdout = '', stderr = '';
child.stdout.on('data', (d) => (stdout += d));
child.stderr.on('data', (d) => (stderr += d));
const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
let done = null;
void exited.then((e) => (done = e));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The TCP ports the program (pid) listens on, with a host to reach each. */
function listening(pid) {
  const inodes = new Set();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        // Closed meanwhile.
      }
    }
  } catch {
    return [];
  }
  const found = [];
  for (const [table, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]]) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9])) continue;
      const [addr, port] = f[1].split(':');
      const any = /^0+$/.test(addr);
      const host = v6 ? (any || addr === '00000000000000000000000001000000' ? '::1' : null) : any ? '127.0.0.1' : hexToV4(addr);
      if (host) found.push({ host, port: parseInt(port, 16) });
    }
  }
  return found.sort((a, b) => a.port - b.port || a.host.localeCompare(b.host));
}

function hexToV4(h) {
  return [3, 2, 1, 0].map((i) => parseInt(h.slice(i * 2, i * 2 + 2), 16)).join('.');
}

/** Connects, sends PROBE, and reads until the reply echoes it or is HTTP. */
function probe({ host, port }) {
  return new Promise((resolve) => {
    let got = '';
    const s = net.connect({ host, port });
    const finish = (ok, why) => {
      clearTimeout(t);
      s.destroy();
      resolve({ host, port, ok, why, reply: got.slice(0, 200) });
    };
    const t = setTimeout(() => finish(false, `no echo or HTTP reply within ${PROBE_MS} ms`), PROBE_MS);
    s.on('connect', () => s.write(PROBE));
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (got.toUpperCase().includes(PROBE.toUpperCase()) || /^HTTP\/1\.[01] \d{3}/.test(got)) finish(true, 'answered');
    });
    s.on('error', (e) => finish(false, e.code ?? e.message));
    s.on('close', () => finish(false, `closed after ${JSON.stringify(got.slice(0, 80))}`));
  });
}

function report(ok, why, extra = {}) {
  const e = done ?? {};
  process.stdout.write(`${JSON.stringify({ ok, why, ...extra, code: e.code, signal: e.signal, stdout: stdout.slice(-4000), stderr: stderr.slice(-4000), ms: Math.round(performance.now() - t0) })}\n`);
}

async function main() {
  let seen = '';
  let stableSince = 0;
  while (performance.now() - t0 < EXIT_MS) {
    if (done) {
      report(done.code === 0, done.code === 0 ? 'exited 0' : `exited with ${done.code ?? done.signal}`);
      return;
    }
    const ports = listening(child.pid);
    const key = JSON.stringify(ports);
    if (key !== seen) {
      seen = key;
      stableSince = performance.now();
    } else if (ports.length > 0 && performance.now() - stableSince >= 400) {
      // Listening, and no new listener for a moment: every one gets a client.
      const probes = [];
      for (const p of ports) probes.push(await probe(p));
      child.kill('SIGINT');
      let timer;
      const stopped = await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, STOP_MS, null)))]);
      clearTimeout(timer);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
        report(false, `still running ${STOP_MS} ms after SIGINT`, { probes });
        return;
      }
      const failed = probes.filter((p) => !p.ok);
      const clean = stopped.code === 0 || stopped.signal === 'SIGINT';
      const why = failed.length ? `no answer on ${failed.map((p) => `${p.host}:${p.port} (${p.why})`).join(', ')}` : clean ? 'answered, then stopped on SIGINT' : `after SIGINT: exit ${stopped.code ?? stopped.signal}`;
      report(failed.length === 0 && clean, why, { probes });
      return;
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  await exited;
  report(false, `neither exited nor listened within ${EXIT_MS} ms`);
}

main().catch((err) => {
  child.kill('SIGKILL');
  report(false, `harness error: ${err.stack ?? err}`);
});
