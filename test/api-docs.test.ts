/**
 * The API reference (`npm run docs`, typedoc over the package's entry
 * points) builds, and every public class, method, attribute and constant in
 * it has a doc comment — typedoc's own `notDocumented` / `notExported`
 * validation, run without writing the site.
 *
 * Files still being documented are listed in GAPS_ALLOWED: their gaps are
 * printed, not failed. Take a file off the list once `npm run docs` shows no
 * warning for it; the test then keeps it that way.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';

trackFds();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const GAPS_ALLOWED = [
  'src/asyncore/async.ts',
  'src/asyncore/dispatcher.ts',
  'src/asyncore/loop.ts',
  'src/asyncore/map.ts',
  'src/asynchat.ts',
  'src/select.ts',
  'src/socket.ts',
];

describe('the API reference', () => {
  it('builds with no error, and documents everything public outside the files still being filled in', () => {
    const typedoc = path.join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
    delete env.LD_PRELOAD;
    const r = spawnSync(process.execPath, [typedoc, '--emit', 'none'], { cwd: root, encoding: 'utf8', env, timeout: 120_000 });
    const out = `${r.stdout}${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
    expect(out, out).toMatch(/Found 0 errors/);
    const warnings = out.split('\n').filter((l) => l.startsWith('[warning]') && !/Found \d+ errors/.test(l));
    const where = (l: string) => /defined in asyncore-native\/(\S+?\.ts)/.exec(l)?.[1] ?? '?';
    const allowed = warnings.filter((l) => GAPS_ALLOWED.includes(where(l)));
    const failing = warnings.filter((l) => !GAPS_ALLOWED.includes(where(l)));
    if (allowed.length) console.log(`API reference: ${allowed.length} gaps left in ${[...new Set(allowed.map(where))].join(', ')}`);
    expect(failing).toEqual([]);
  }, 130_000);
});
