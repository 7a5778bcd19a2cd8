// Output helpers for bench/run.mjs: a progress line, plain-text tables, the
// machine description, and SVG charts rendered by Vega-Lite (compiled to a
// Vega spec, rendered headless with renderer 'none'; no canvas needed).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import * as vega from 'vega';
import { compile } from 'vega-lite';

/**
 * A progress reporter: on a TTY one line rewritten in place, otherwise one
 * plain line per update (logs stay readable in CI).
 */
export function progress(stream = process.stderr) {
  const tty = Boolean(stream.isTTY);
  const t0 = Date.now();
  let last = '';
  return {
    update(msg) {
      const line = `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`;
      if (tty) {
        const w = stream.columns || 120;
        stream.write(`\r\x1b[K${line.slice(0, w - 1)}`);
      } else if (line !== last) {
        stream.write(`${line}\n`);
      }
      last = line;
    },
    /** Ends the in-place line so later output starts on a fresh one. */
    done() {
      if (tty && last) stream.write('\r\x1b[K');
      last = '';
    },
  };
}

/** Formats rows (objects with the same keys) as an aligned text table, or markdown. */
export function table(rows, { markdown = false } = {}) {
  if (!rows.length) return '(no rows)\n';
  const cols = Object.keys(rows[0]);
  const cells = rows.map((r) => cols.map((c) => (r[c] === undefined || r[c] === null ? '' : String(r[c]))));
  if (markdown) {
    const out = [`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`];
    for (const r of cells) out.push(`| ${r.join(' | ')} |`);
    return out.join('\n') + '\n';
  }
  const w = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals) => vals.map((v, i) => (i === 0 ? v.padEnd(w[i]) : v.padStart(w[i]))).join('  ');
  return [line(cols), w.map((n) => '-'.repeat(n)).join('  '), ...cells.map(line)].join('\n') + '\n';
}

/** Median of numbers (NaN-free input); undefined for an empty list. */
export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Least-squares line y = a + b·x with R². */
export function linearFit(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  const b = sxx ? sxy / sxx : 0;
  return { intercept: my - b * mx, slope: b, r2: sxx && syy ? (sxy * sxy) / (sxx * syy) : 1 };
}

function tryRun(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return null;
  }
}

/** The machine a result was measured on. */
export function machineInfo() {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    /* not Linux */
  }
  return {
    cpu,
    cores: os.availableParallelism(),
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    python: tryRun('python3.11', ['--version']),
    gcc: tryRun('gcc', ['-dumpfullversion']),
    date: new Date().toISOString(),
  };
}

/** Renders a Vega-Lite spec to an SVG string (headless, no canvas). */
export async function renderSvg(vlSpec) {
  const { spec } = compile(vlSpec);
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
