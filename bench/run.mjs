#!/usr/bin/env node
// The benchmark: select vs poll vs epoll, and asyncore-native against its peers.
//
//   npm run bench                 # pollers, echo, timers, queues: full (10–25 minutes), results in bench/out/
//   npm run bench -- --quick      # fewer sizes, 1 run, short windows (about 1 minute), bench/out/quick/
//   npm run bench -- --soak       # 10 000 connections for 30 s through our epoll loop
//   npm run bench -- --record     # also copy the results to bench/results/ (committed; the README's figures)
//   npm run bench -- --charts DIR # only redraw DIR's charts from its results.json / soak.json (no measuring)
//   options: --only pollers|echo|timers|queues|idle|soak  --runs N  --duration S  --warmup S  --no-python  --out DIR
//
// Builds what it needs (the C tools with make, the addon and dist/ when
// missing or older than src/), skips the Python rows with a stated reason when
// python3.11 is missing, waits for a quiet machine before each run — within a
// budget for the whole run (QUIET below), so a busy machine makes the results
// noisier, never the run endless — and records how noisy it was. Writes
// results.json (every figure, raw runs, the machine), one SVG chart per
// benchmark (Vega-Lite) and summary.md (the tables as markdown) into bench/out/
// (git-ignored); prints the tables and the budget verdicts.
//
// Adding a benchmark: one entry in PARTS (a name, whether a plain run includes
// it, and `run(ctx)` returning its JSON, markdown and charts).
import { parseArgs } from 'node:util';
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, buildC, waitForQuiet } from './lib/peers.mjs';
import { progress, table, median, linearFit, machineInfo, renderSvg } from './lib/report.mjs';
import { ECHO_CELLS, QUICK_ECHO_CELLS, ECHO_SERVERS, runEcho, pythonMissing, liveServers } from './echo.mjs';
import { runSoak } from './soak.mjs';

const ROOT = path.resolve(BENCH_DIR, '..');
const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    soak: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    'no-python': { type: 'boolean', default: false },
    'soak-conns': { type: 'string', default: '10000' },
    'soak-duration': { type: 'string' },
    out: { type: 'string' },
    record: { type: 'boolean', default: false },
    charts: { type: 'string' },
  },
});
const quick = opt.quick;
// Results go to bench/out/ (git-ignored); --record copies them to bench/results/, the committed copy.
const outDir = path.resolve(opt.out ?? path.join(BENCH_DIR, 'out', quick ? 'quick' : ''));
const recordDir = path.join(BENCH_DIR, 'results', quick ? 'quick' : '');

// Waiting for a quiet machine: at most `eachMs` per wait, `totalMs` for the whole run. Once the
// budget is spent, each run only samples the machine's idle share (100 ms) for the noise report.
// --quick: 10 s in all; measured total run time in the README.
const QUIET = quick ? { eachMs: 2000, totalMs: 10_000 } : { eachMs: 20_000, totalMs: 300_000 };
let quietSpentMs = 0;
/** waitForQuiet within the run's budget; resolves { idle, waitedMs, quiet }. */
async function quiet() {
  const left = QUIET.totalMs - quietSpentMs;
  const q = left > 0 ? await waitForQuiet({ maxWaitMs: Math.min(QUIET.eachMs, left) }) : await waitForQuiet({ maxWaitMs: 0, windowMs: 100 });
  quietSpentMs += q.waitedMs;
  return q;
}
const P = progress();
// Interrupted (Ctrl-C, kill): take every server down with us.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    for (const proc of liveServers) proc.kill('SIGKILL');
    P.done();
    console.error(`interrupted (${sig}); servers stopped`);
    process.exit(130);
  });
}
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

// ------------------------------------------------------------ preflight

function newestMtime(dir, ext) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestMtime(p, ext));
    else if (e.name.endsWith(ext)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

function preflight() {
  P.update('building the C tools (make -C bench/c)');
  buildC();
  const addonBuilt = existsSync(path.join(ROOT, 'build/Release')) && readdirSync(path.join(ROOT, 'build/Release')).some((f) => f.endsWith('.node'));
  if (!addonBuilt) {
    P.update('building the addon (scripts/build-native.mjs --from-source)');
    execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-native.mjs'), '--from-source'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const distIndex = path.join(ROOT, 'dist/index.js');
  if (!existsSync(distIndex) || newestMtime(path.join(ROOT, 'src'), '.ts') > statSync(distIndex).mtimeMs) {
    P.update('compiling dist/ (scripts/build-dist.mjs)');
    execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-dist.mjs')], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  }
}

/** Spawns a child that prints 'CELL <label>' on stderr and one JSON line on stdout. */
function runChild(cmd, args, label, limitMs) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => proc.kill('SIGKILL'), limitMs);
    proc.stdout.setEncoding('utf8').on('data', (c) => (out += c));
    proc.stderr.setEncoding('utf8').on('data', (c) => {
      err += c;
      const cells = c.match(/^CELL .*$/gm);
      if (cells) P.update(`pollers (${label}): ${cells[cells.length - 1].slice(5)}`);
    });
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop();
      if (code !== 0 || !line?.startsWith('[')) {
        reject(new Error(`${label} pollers failed (code ${code}, signal ${signal}): ${err.replace(/^CELL .*\n/gm, '').trim()}`));
        return;
      }
      resolve(JSON.parse(line));
    });
  });
}

// ------------------------------------------------------------ pollers

const POLLER_SIZES = quick ? [16, 256, 1000, 4000] : [16, 64, 256, 1000, 4000, 16000];

/** Shape check: select/poll linear in registered fds, epoll flat in registered and linear in ready. */
function slopeChecks(rows) {
  const out = [];
  for (const impl of [...new Set(rows.map((r) => r.impl))]) {
    for (const poller of ['select', 'poll', 'epoll']) {
      const one = rows.filter((r) => r.impl === impl && r.poller === poller && r.mode === '1' && r.nsPerCall);
      if (one.length < 3) continue;
      const xs = one.map((r) => r.registered), ys = one.map((r) => r.nsPerCall);
      const f = linearFit(xs, ys);
      const first = one[0], last = one[one.length - 1];
      const growth = last.nsPerCall / first.nsPerCall;
      const span = last.registered / first.registered;
      if (poller === 'epoll') {
        out.push({
          impl, poller, expect: 'flat in registered (1 ready)', slope: `${f.slope.toFixed(3)} ns/fd`, r2: f.r2.toFixed(2),
          [`t(max)/t(min)`]: growth.toFixed(2), pass: growth <= 2,
        });
        const ten = rows.filter((r) => r.impl === impl && r.poller === 'epoll' && r.mode === '10%' && r.nsPerCall);
        const g = linearFit(ten.map((r) => r.ready), ten.map((r) => r.nsPerCall));
        const g10 = ten[ten.length - 1].nsPerCall / ten[0].nsPerCall;
        out.push({
          impl, poller, expect: 'linear in ready (10 % ready)', slope: `${g.slope.toFixed(1)} ns/ready fd`, r2: g.r2.toFixed(2),
          [`t(max)/t(min)`]: g10.toFixed(2), pass: g.r2 >= 0.9 && g.slope > 0 && g10 >= 2,
        });
      } else {
        // Linear and dominated by the per-fd term at the largest N: R² >= 0.9
        // and at least a fifth of the fd-count growth shows in the time.
        out.push({
          impl, poller, expect: 'linear in registered (1 ready)', slope: `${f.slope.toFixed(1)} ns/fd`, r2: f.r2.toFixed(2),
          [`t(max)/t(min)`]: growth.toFixed(2), pass: f.r2 >= 0.9 && f.slope > 0 && growth >= span / 5,
        });
      }
    }
  }
  return out;
}

async function pollersBench(skipPython) {
  const q = await quiet();
  const cellMs = quick ? 150 : 600;
  const sizes = POLLER_SIZES.join(',');
  const ours = await runChild(process.execPath, [path.join(BENCH_DIR, 'pollers.mjs'), '--json', '--sizes', sizes, '--cell-ms', String(cellMs)], 'asyncore-native', 600_000);
  let py = [];
  if (!skipPython) {
    await quiet();
    py = await runChild('python3.11', [path.join(BENCH_DIR, 'peers/py_pollers.py'), '--sizes', sizes, '--cell-ms', String(cellMs)], 'python3.11', 600_000);
  }
  const rows = [...ours, ...py];
  return { rows, checks: slopeChecks(rows), cellMs, sizes: POLLER_SIZES, quietBefore: q };
}

function pollerTable(rows) {
  const keys = [...new Set(rows.map((r) => `${r.registered}|${r.ready}`))];
  const cell = (impl, poller, reg, ready) => {
    const r = rows.find((x) => x.impl === impl && x.poller === poller && x.registered === reg && x.ready === ready);
    if (!r) return '';
    return r.na ? 'n/a' : Math.round(r.nsPerCall).toLocaleString('en-US');
  };
  const hasPy = rows.some((r) => r.impl === 'python3.11');
  return keys.map((k) => {
    const [reg, ready] = k.split('|').map(Number);
    const row = { registered: reg, ready };
    for (const p of ['select', 'poll', 'epoll']) row[`${p} ns`] = cell('asyncore-native', p, reg, ready);
    if (hasPy) for (const p of ['select', 'poll', 'epoll']) row[`py ${p} ns`] = cell('python3.11', p, reg, ready);
    return row;
  });
}

function pollerChart(rows) {
  const data = rows.filter((r) => r.nsPerCall).map((r) => ({
    series: `${r.impl === 'python3.11' ? 'Python ' : ''}${r.poller}`,
    impl: r.impl,
    poller: r.poller,
    registered: r.registered,
    usPerCall: r.nsPerCall / 1000,
    readyMode: r.mode === '1' ? '1 ready' : '10 % ready',
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'One wait call (timeout 0) vs registered descriptors', subtitle: 'median µs per call, log-log; solid: asyncore-native, dashed: Python 3.11 select module' },
    data: { values: data },
    facet: { column: { field: 'readyMode', type: 'nominal', title: null, sort: ['1 ready', '10 % ready'] } },
    spec: {
      width: 320,
      height: 260,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'registered', type: 'quantitative', scale: { type: 'log' }, title: 'registered fds' },
        y: { field: 'usPerCall', type: 'quantitative', scale: { type: 'log' }, title: 'µs per call' },
        color: { field: 'poller', type: 'nominal', title: 'poller' },
        // The line style's legend needs its own stroke: without symbolStrokeColor + a transparent
        // fill, Vega draws the swatch as a filled zero-height path, which shows nothing.
        strokeDash: {
          field: 'impl', type: 'nominal', title: 'implementation',
          legend: { symbolType: 'stroke', symbolStrokeColor: 'black', symbolFillColor: 'transparent', symbolStrokeWidth: 2, symbolSize: 400 },
          scale: { domain: ['asyncore-native', 'python3.11'], range: [[1, 0], [5, 3]] },
        },
        detail: { field: 'series' },
        tooltip: [{ field: 'series' }, { field: 'registered' }, { field: 'usPerCall', format: '.2f' }],
      },
    },
    config: { background: 'white' },
  };
}

// ------------------------------------------------------------ echo

const fmt = (x, d = 0) => (x === undefined || x === null || Number.isNaN(x) ? '' : Number(x).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));

function echoTable(rows) {
  return rows.map((r) => ({
    server: r.server,
    cell: `${r.conns}×${r.size}`,
    'msgs/s': r.na ? 'n/a' : fmt(r.msgsPerSec),
    '×C': r.na ? '' : fmt(r.ratioToC, 2),
    'srv µs/msg': r.na ? '' : fmt(r.serverCpuPerMsgUs, 2),
    'µs ×C': r.na ? '' : fmt(r.cpuRatioToC, 2),
    'srv cpu': r.na ? '' : fmt(r.serverCpu, 2),
    'cli cpu': r.na ? '' : fmt(r.clientCpu, 2),
    'p50 µs': r.na ? '' : fmt(r.p50Us),
    'p99 µs': r.na ? '' : fmt(r.p99Us),
    errors: r.na ? '' : r.errors,
    'RSS MiB': r.na ? '' : fmt(r.rssMiB, 1),
    runs: r.na ? '' : r.runs,
    note: r.na ?? r.problems ?? (r.disturbed ? `${r.disturbed} disturbed run(s)` : ''),
  }));
}

function echoChart(rows, order) {
  const data = rows.filter((r) => !r.na).map((r) => ({
    server: r.server,
    cell: `${r.conns} conns × ${r.size} B`,
    kmsgs: r.msgsPerSec / 1000,
    us: r.serverCpuPerMsgUs,
  }));
  const cells = [...new Set(data.map((d) => d.cell))];
  const panel = (field, title) => ({
    width: 150,
    height: 200,
    mark: 'bar',
    encoding: {
      x: { field: 'server', type: 'nominal', sort: order, axis: { labelAngle: -50 }, title: null },
      y: { field, type: 'quantitative', title },
      color: { field: 'server', type: 'nominal', sort: order, legend: null },
      tooltip: [{ field: 'server' }, { field: 'cell' }, { field, format: '.2f' }],
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Echo ping-pong through each server (C loadgen, loopback)', subtitle: 'top: thousand messages per second; bottom: server CPU µs per message (lower is better); n/a cells omitted' },
    data: { values: data },
    vconcat: [
      { facet: { column: { field: 'cell', type: 'nominal', title: null, sort: cells } }, spec: panel('kmsgs', 'k msgs/s'), resolve: { scale: { y: 'independent' } } },
      { facet: { column: { field: 'cell', type: 'nominal', title: null, sort: cells } }, spec: panel('us', 'server µs/msg'), resolve: { scale: { y: 'independent' } } },
    ],
    config: { background: 'white' },
  };
}

/** The budgets of the issue, evaluated on the echo rows. */
function budgets(rows) {
  const get = (server, conns, size = 64) => rows.find((r) => r.server === server && r.conns === conns && r.size === size && !r.na);
  const B = [];
  const add = (what, server, vs, conns, metric, op, k) => {
    const a = get(server, conns), b = get(vs, conns);
    if (!a || !b) {
      B.push({ budget: what, measured: 'not measured', target: `${op} ${k}`, verdict: 'n/a' });
      return;
    }
    const ratio = a[metric] / b[metric];
    const pass = op === '>=' ? ratio >= k : ratio <= k;
    B.push({ budget: what, measured: `${ratio.toFixed(2)}× (${fmt(a[metric], metric === 'msgsPerSec' ? 0 : 2)} vs ${fmt(b[metric], metric === 'msgsPerSec' ? 0 : 2)})`, target: `${op} ${k}×`, verdict: pass ? 'PASS' : 'FAIL' });
  };
  for (const c of [100, 1000]) add(`loop/epoll msgs/s vs c-epoll, ${c}×64`, 'loop/epoll', 'c-epoll', c, 'msgsPerSec', '>=', 0.9);
  add('loop/epoll msgs/s vs node-net, 1000×64', 'loop/epoll', 'node-net', 1000, 'msgsPerSec', '>=', 1.3);
  add('loop/epoll msgs/s vs py-asyncore, 1000×64', 'loop/epoll', 'py-asyncore', 1000, 'msgsPerSec', '>=', 1.3);
  for (const c of [100, 1000]) add(`loop/epoll server CPU/msg vs c-epoll, ${c}×64`, 'loop/epoll', 'c-epoll', c, 'serverCpuPerMsgUs', '<=', 1.15);
  return B;
}

// ------------------------------------------------------------ soak

function soakChart(soak) {
  const data = [];
  for (const s of soak.samples) {
    data.push({ t: s.t, metric: 'open fds (server)', value: s.fds });
    data.push({ t: s.t, metric: 'RSS MiB (server)', value: s.rssMiB });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Soak: ${soak.conns} connections ping-ponging for ${soak.duration} s through loop/epoll`, subtitle: 'shaded: the measured window; fds must return to baseline after the clients leave' },
    data: { values: data },
    facet: { row: { field: 'metric', type: 'nominal', title: null } },
    spec: {
      width: 520,
      height: 150,
      layer: [
        { data: { values: [soak.window] }, mark: { type: 'rect', opacity: 0.12, color: 'steelblue' }, encoding: { x: { field: 'start', type: 'quantitative' }, x2: { field: 'end' } } },
        { mark: { type: 'line', point: false }, encoding: { x: { field: 't', type: 'quantitative', title: 'seconds since server start' }, y: { field: 'value', type: 'quantitative', title: null } } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
    config: { background: 'white' },
  };
}

// ------------------------------------------------------------ parts

/**
 * The benchmarks run.mjs knows. Each `run(ctx)` resolves `{ json, md, failed? }`;
 * `json` lands under `results[name]`, `md` in summary.md, and `charts(json)` gives
 * the charts to draw beside them (`{ 'file.svg': vegaLiteSpec }`; also used by
 * --charts to redraw from saved results). `ctx`: { quick, opt, pyMissing, quiet,
 * print, progress }. `inDefault`: part of a plain `npm run bench` (`inQuick: false`: not of
 * `--quick`, which keeps its stated time); the others run
 * with `--only NAME` (soak also with --soak, into its own files).
 */
const PARTS = [
  {
    name: 'pollers',
    inDefault: true,
    async run(ctx) {
      const r = await pollersBench(ctx.pyMissing);
      const t = pollerTable(r.rows);
      const checks = r.checks.map((c) => ({ ...c, pass: c.pass ? 'yes' : 'NO' }));
      ctx.print(`\nPoller scaling: ns per wait call (timeout 0), median of ${r.cellMs} ms of batched calls per cell\n${table(t)}`);
      ctx.print(`\nShape check\n${table(checks)}`);
      return {
        json: r,
        md: `## Poller scaling (ns per call)\n\n${table(t, { markdown: true })}\n### Shape check\n\n${table(checks, { markdown: true })}`,
      };
    },
    charts: (json) => ({ 'pollers.svg': pollerChart(json.rows) }),
  },
  {
    name: 'echo',
    inDefault: true,
    async run(ctx) {
      const runs = Number(opt.runs ?? (quick ? 1 : 3));
      const duration = Number(opt.duration ?? (quick ? 0.5 : 2));
      const warmup = Number(opt.warmup ?? (quick ? 0.2 : 0.5));
      const r = await runEcho({
        cells: quick ? QUICK_ECHO_CELLS : ECHO_CELLS,
        runs,
        duration,
        warmup,
        quiet: ctx.quiet,
        skipPython: ctx.pyMissing,
        onProgress: (m) => ctx.progress(m),
      });
      const json = { runs, duration, warmup, ...r };
      const t = echoTable(r.rows);
      const others = r.raw.map((x) => x.other);
      const noise = {
        runs: r.raw.length,
        disturbed: others.filter((o) => o > 0.25).length,
        medianOtherCpu: median(others),
        maxOtherCpu: Math.max(...others),
        minIdleBefore: Math.min(...r.raw.map((x) => x.quietIdle)),
      };
      json.noise = noise;
      const noiseLine = `Noise: ${noise.runs} runs; other processes' CPU during the windows median ${fmt(noise.medianOtherCpu, 2)}, max ${fmt(noise.maxOtherCpu, 2)} cores; ${noise.disturbed} run(s) above 0.25 (kept after one retry); idle share before runs >= ${fmt(noise.minIdleBefore, 2)}.`;
      ctx.print(`\nEcho throughput: ${runs === 1 ? '1 run' : `median of ${runs} runs`}, ${duration} s window after ${warmup} s warm-up; ×C = ratio to c-epoll in the same cell\n${table(t)}${noiseLine}\n`);
      for (const sk of r.skipped) ctx.print(`skipped ${sk.server}: ${sk.reason}\n`);
      const b = budgets(r.rows);
      results.budgets = b;
      ctx.print(`\nBudgets (loop/epoll)\n${table(b)}`);
      return {
        json,
        md: `## Echo throughput\n\n${table(t, { markdown: true })}\n${noiseLine}\n\n## Budgets\n\n${table(b, { markdown: true })}`,
        failed: r.rows.some((x) => !x.na && x.errors > 0),
      };
    },
    charts: (json) => ({ 'echo.svg': echoChart(json.rows, ECHO_SERVERS.map((x) => x.name)) }),
  },
  {
    name: 'soak',
    inDefault: false,
    async run(ctx) {
      const conns = Number(opt['soak-conns']);
      const duration = Number(opt['soak-duration'] ?? (quick ? 10 : 30));
      await ctx.quiet();
      const s = await runSoak({ conns, duration, onProgress: (m) => ctx.progress(m) });
      const t = ['baseline', 'start', 'middle', 'end', 'after'].map((k) => ({ point: k, fds: s.fds[k], 'RSS MiB': s.rssMiB[k] }));
      const checks = s.checks.map((c) => ({ ...c, pass: c.pass ? 'yes' : 'NO' }));
      const head = `${fmt(s.msgsPerSec)} msgs/s, ${s.errors} errors, ramp ${s.connectSeconds.toFixed(2)} s, server ${fmt(s.serverCpuPerMsgUs, 2)} µs/msg`;
      ctx.print(`\nSoak: ${conns} connections × 64 B for ${duration} s through loop/epoll: ${head}\n${table(t)}\n${table(checks)}`);
      return {
        json: s,
        md: `## Soak (${conns} connections, ${duration} s)\n\n${head}\n\n${table(t, { markdown: true })}\n${table(checks, { markdown: true })}`,
        failed: !s.pass,
      };
    },
    charts: (json) => ({ 'soak.svg': soakChart(json) }),
  },
];

/**
 * A part that is its own script (it measures in its own process, prints its
 * tables as markdown and writes one JSON file): run with a time limit, its
 * JSON kept under the part's name and its markdown in summary.md.
 * `args(outDir)` gives the script's arguments.
 */
function scriptPart({ name, inDefault, inQuick, script, file, args, limitS }) {
  return {
    name,
    inDefault,
    inQuick,
    async run(ctx) {
      await ctx.quiet();
      ctx.progress(`${name}: node ${path.relative(ROOT, script)}`);
      const argv = [script, ...args(outDir, ctx)];
      const out = await new Promise((resolve, reject) => {
        const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        liveServers.add(child);
        let stdout = '', stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => {
          stderr += d;
          const last = String(d).trim().split('\n').pop();
          if (last) ctx.progress(`${name}: ${last.slice(0, 100)}`);
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), limitS * 1000);
        child.on('exit', (code, signal) => {
          clearTimeout(timer);
          liveServers.delete(child);
          if (code === 0) resolve(stdout);
          else reject(new Error(`${name}: ${path.relative(ROOT, script)} ${signal ? `killed (${signal}, limit ${limitS} s)` : `exited ${code}`}\n${stderr.slice(-2000)}`));
        });
      });
      const json = JSON.parse(readFileSync(path.join(outDir, file), 'utf8'));
      const md = out.replace(/^results: .*$/m, '').trim();
      ctx.print(`\n${md}\n`);
      return { json, md };
    },
  };
}

PARTS.push(
  scriptPart({
    name: 'timers',
    inDefault: true,
    inQuick: false,
    script: path.join(BENCH_DIR, 'timers.mjs'),
    file: 'timers.json',
    args: (dir) => [...(quick ? ['--quick'] : []), '--out', dir],
    limitS: 600,
  }),
  scriptPart({
    name: 'queues',
    inDefault: true,
    inQuick: false,
    script: path.join(BENCH_DIR, 'queues.mjs'),
    file: 'queues.json',
    args: (dir, ctx) => [
      ...(quick ? ['--sizes', '50000,200000', '--runs', '1'] : []),
      ...(ctx.pyMissing ? ['--no-python'] : []),
      '--out',
      path.join(dir, 'queues.json'),
    ],
    limitS: 600,
  }),
  // About 27 minutes in full (120 runs; --quick about 2), so only with --only idle.
  scriptPart({
    name: 'idle',
    inDefault: false,
    script: path.join(BENCH_DIR, 'idle.mjs'),
    file: 'idle.json',
    args: (dir, ctx) => [...(quick ? ['--quick'] : []), ...(ctx.pyMissing ? ['--no-python'] : []), '--out', dir],
    limitS: 50 * 60,
  }),
);

/** --charts DIR: redraws the charts of DIR's saved results (after a change to a chart, not to a figure). */
async function redraw(dir) {
  const drawn = [];
  for (const file of ['results.json', 'soak.json']) {
    const p = path.join(dir, file);
    if (!existsSync(p)) continue;
    const saved = JSON.parse(readFileSync(p, 'utf8'));
    for (const part of PARTS) {
      if (!saved[part.name] || !part.charts) continue;
      for (const [svg, spec] of Object.entries(part.charts(saved[part.name]))) {
        writeFileSync(path.join(dir, svg), await renderSvg(spec));
        drawn.push(svg);
      }
    }
  }
  console.log(drawn.length ? `redrew ${drawn.join(', ')} in ${path.relative(ROOT, dir) || '.'}/` : `no results.json / soak.json in ${dir}`);
  process.exit(drawn.length ? 0 : 1);
}
if (opt.charts) await redraw(path.resolve(opt.charts));

// ------------------------------------------------------------ main

const known = new Set(PARTS.map((p) => p.name));
const only = new Set((opt.only ?? (opt.soak ? 'soak' : PARTS.filter((p) => p.inDefault && (!quick || p.inQuick !== false)).map((p) => p.name).join(','))).split(','));
for (const name of only) {
  if (!known.has(name)) {
    console.error(`unknown part --only ${name} (known: ${[...known].join(', ')})`);
    process.exit(2);
  }
}
const results = { command, quick, machine: machineInfo(), startedAt: new Date().toISOString() };
const md = [`# Benchmark results\n`, `Command: \`${command}\`  \nMachine: ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.kernel}, Node ${results.machine.node}, ${results.machine.python ?? 'no python3.11'}  \nDate: ${results.startedAt}\n`];
const print = (s) => {
  P.done();
  process.stdout.write(s);
};
const t0 = performance.now();
let failed = false;

try {
  preflight();
  const pyMissing = opt['no-python'] ? 'skipped by --no-python' : pythonMissing();
  if (pyMissing) print(`Python rows skipped: ${pyMissing}\n`);
  results.pythonSkipped = pyMissing;
  mkdirSync(outDir, { recursive: true });
  const ctx = { quick, opt, pyMissing, quiet, print, progress: (m) => P.update(m) };
  const written = [];
  for (const part of PARTS.filter((p) => only.has(p.name))) {
    const r = await part.run(ctx);
    results[part.name] = r.json;
    md.push(r.md);
    for (const [file, spec] of Object.entries(part.charts?.(r.json) ?? {})) {
      writeFileSync(path.join(outDir, file), await renderSvg(spec));
      written.push(file);
    }
    if (r.failed) failed = true;
  }
  results.finishedAt = new Date().toISOString();
  results.quietWaitSeconds = +(quietSpentMs / 1000).toFixed(1);
  results.totalSeconds = +((performance.now() - t0) / 1000).toFixed(1);
  // A run of some parts only writes files of its own name, so it never
  // replaces the full run's results.json (here or, with --record, the committed copy).
  const defaults = PARTS.filter((p) => p.inDefault && (!quick || p.inQuick !== false)).map((p) => p.name);
  const full = only.size === defaults.length && defaults.every((n) => only.has(n));
  // (The soak keeps its soak.json; a script part writes its own NAME.json, so the run's file is run-NAME.json.)
  const name = full ? 'results' : only.size === 1 && only.has('soak') ? 'soak' : `run-${[...only].join('-')}`;
  const files = [`${name}.json`, `${full ? 'summary' : `${name}-summary`}.md`, ...written];
  writeFileSync(path.join(outDir, files[0]), JSON.stringify(results, null, 1) + '\n');
  writeFileSync(path.join(outDir, files[1]), md.join('\n'));
  print(`\nWrote ${path.relative(ROOT, outDir) || '.'}/: ${files.join(', ')} (${results.totalSeconds} s in all, ${results.quietWaitSeconds} s of it waiting for a quiet machine)\n`);
  if (opt.record) {
    mkdirSync(recordDir, { recursive: true });
    for (const f of files) cpSync(path.join(outDir, f), path.join(recordDir, f));
    print(`Recorded into ${path.relative(ROOT, recordDir)}/ (the committed copy the READMEs quote)\n`);
  }
} catch (err) {
  P.done();
  console.error(err);
  failed = true;
}
process.exit(failed ? 1 : 0);
