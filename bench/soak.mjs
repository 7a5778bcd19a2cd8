// Soak: 10 000 concurrent connections ping-ponging through our epoll `loop`
// echo server for 30 s (loadgen in its own process: 10 000 client fds would
// not fit beside the server's in one 20 000-fd process). Question answered:
// "does the loop hold 10k connections without errors, without leaking
// descriptors, and with flat memory?" Used by bench/run.mjs --soak.
//
// The server's fd count and RSS are sampled every 0.5 s from /proc: the
// figures are at baseline (before clients), window start, middle and end,
// and after the clients left (fds must return to baseline within 10 s).
import path from 'node:path';
import { BENCH_DIR, startServer, runLoad } from './lib/peers.mjs';
import { liveServers } from './echo.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @returns {Promise<{conns, duration, errors, msgsPerSec, connectSeconds, serverCpuPerMsgUs,
 *   fds: {baseline, start, middle, end, after}, rssMiB: {...}, samples, checks}>}
 */
export async function runSoak({ conns = 10_000, duration = 30, warmup = 1, onProgress = () => {} } = {}) {
  const srv = await startServer(process.execPath, [path.join(BENCH_DIR, 'servers/asyncore_echo.mjs'), '--backend', 'epoll']);
  liveServers.add(srv.proc);
  const samples = [];
  let sampling = true;
  try {
    await sleep(500);
    const t0 = Date.now();
    const sample = () => samples.push({ t: (Date.now() - t0) / 1000, fds: srv.fdCount(), rssMiB: srv.rssKiB() / 1024 });
    sample();
    const baselineFds = samples[0].fds;
    const sampler = (async () => {
      while (sampling) {
        await sleep(500);
        sample();
        const s = samples[samples.length - 1];
        onProgress(`soak ${conns} conns: t=${s.t.toFixed(0)} s fds=${s.fds} rss=${s.rssMiB.toFixed(1)} MiB`);
      }
    })();
    const tLoad = (Date.now() - t0) / 1000;
    const r = await runLoad({ port: srv.port, conns, size: 64, duration, warmup, connectTimeout: 60, server: srv });
    const tDone = (Date.now() - t0) / 1000;
    // Clients gone: wait (bounded) for the server to close every connection.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && srv.fdCount() > baselineFds) await sleep(200);
    await sleep(600);
    sampling = false;
    await sampler;
    sample();
    // The window's edges on our clock: loadgen started at tLoad, ramped for
    // connectSeconds, warmed up, then measured `duration` seconds.
    const wStart = tLoad + r.connectSeconds + warmup;
    const at = (t) => samples.reduce((best, s) => (Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best));
    const pts = { baseline: samples[0], start: at(wStart), middle: at(wStart + duration / 2), end: at(Math.min(wStart + duration, tDone) - 0.5), after: samples[samples.length - 1] };
    const fds = Object.fromEntries(Object.entries(pts).map(([k, s]) => [k, s.fds]));
    const rssMiB = Object.fromEntries(Object.entries(pts).map(([k, s]) => [k, +s.rssMiB.toFixed(1)]));
    const rssGrowth = (rssMiB.end - rssMiB.start) / rssMiB.start;
    const checks = [
      { check: 'errors = 0', pass: r.errors === 0, value: r.errors },
      { check: `all ${conns} connections up in the window`, pass: r.connected === conns, value: r.connected },
      { check: 'fds at window start = baseline + conns', pass: fds.start === baselineFds + conns, value: fds.start },
      { check: 'fds back to baseline after clients leave', pass: fds.after === baselineFds, value: fds.after },
      { check: 'RSS flat over the window (end within 10 % of start)', pass: Math.abs(rssGrowth) <= 0.1, value: `${(rssGrowth * 100).toFixed(1)} %` },
    ];
    return {
      conns,
      duration,
      errors: r.errors,
      connected: r.connected,
      msgsPerSec: r.msgsPerSec,
      connectSeconds: r.connectSeconds,
      serverCpuPerMsgUs: r.serverCpuPerMsgUs,
      clientCpu: r.clientCpuShare,
      serverCpu: r.serverCpuShare,
      rttP50Us: r.rttP50Us,
      rttP99Us: r.rttP99Us,
      fds,
      rssMiB,
      samples,
      window: { start: wStart, end: wStart + duration },
      checks,
      pass: checks.every((c) => c.pass),
    };
  } finally {
    sampling = false;
    await srv.stop();
    liveServers.delete(srv.proc);
  }
}
