/**
 * The benchmark charts explain themselves: every line style and colour in
 * the pollers chart has a legend swatch that shows it (the line-style legend
 * once drew invisible swatches). Redraws the committed results with
 * `bench/run.mjs --charts` into a scratch folder, measuring nothing.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';

trackFds();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('benchmark charts', () => {
  it('the pollers chart has a visible swatch for each line style (implementation) and each colour (poller)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'an-charts-'));
    try {
      copyFileSync(path.join(root, 'bench/results/results.json'), path.join(dir, 'results.json'));
      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env.LD_PRELOAD;
      const r = spawnSync(process.execPath, [path.join(root, 'bench/run.mjs'), '--charts', dir], { encoding: 'utf8', env, timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      const svg = readFileSync(path.join(dir, 'pollers.svg'), 'utf8');
      const symbols = [...svg.matchAll(/<g class="mark-symbol role-legend-symbol"[^>]*><path ([^>]*)\/>/g)].map((m) => m[1]!);
      const labels = [...svg.matchAll(/role-legend-label[^>]*><text[^>]*>([^<]*)</g)].map((m) => m[1]);
      expect(labels).toEqual(['epoll', 'poll', 'select', 'asyncore-native', 'python3.11']);
      // Colours: a filled, stroked circle per poller, each its own colour.
      const colours = symbols.slice(0, 3).map((a) => /stroke="(#[0-9a-f]{6})"/.exec(a)?.[1]);
      expect(new Set(colours).size).toBe(3);
      // Line styles: a stroked line segment, solid and dashed.
      const lines = symbols.slice(3);
      for (const a of lines) expect(a).toMatch(/d="M-?\d+(\.\d+)?,0L\d+(\.\d+)?,0" stroke="black" stroke-width="2"/);
      expect(lines.map((a) => /stroke-dasharray="([^"]*)"/.exec(a)?.[1])).toEqual(['1,0', '5,3']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
