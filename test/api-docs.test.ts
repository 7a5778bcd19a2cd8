/**
 * The API reference (`npm run docs`, typedoc over the package's entry
 * points) builds, and every public class, method, attribute and constant in
 * it has a doc comment — typedoc's own `notDocumented` / `notExported`
 * validation, run without writing the site.
 *
 * Files still being documented are listed in GAPS_ALLOWED (files or folders
 * that other work is changing now): their gaps are printed, not failed. Take
 * an entry off the list once `npm run docs` shows no warning for it; the test
 * then keeps it that way.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';

trackFds();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// A file, or a folder (ending in '/') for every file in it.
const GAPS_ALLOWED = ['src/asyncore/', 'src/asynchat.ts', 'src/select.ts', 'src/socket.ts', 'src/cli/'];
const allowed = (file: string): boolean => GAPS_ALLOWED.some((g) => (g.endsWith('/') ? file.startsWith(g) : file === g));

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
    const left = warnings.filter((l) => allowed(where(l)));
    const failing = warnings.filter((l) => !allowed(where(l)));
    if (left.length) console.log(`API reference: ${left.length} gaps left in ${[...new Set(left.map(where))].join(', ')}`);
    expect(failing).toEqual([]);
  }, 130_000);
});
