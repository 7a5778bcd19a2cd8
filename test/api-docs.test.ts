/**
 * The API reference (`npm run docs`, typedoc over the package's entry
 * points) builds, and every public class, method, attribute and constant in
 * it has a doc comment — typedoc's own `notDocumented` / `notExported` /
 * `invalidLink` validation, run without writing the site. Any warning fails:
 * an undocumented public item anywhere in the package is a failure.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { trackFds } from './helpers/fds.js';

trackFds();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('the API reference', () => {
  it('builds with no error or warning: everything public is documented', () => {
    const typedoc = path.join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
    delete env.LD_PRELOAD;
    const r = spawnSync(process.execPath, [typedoc, '--emit', 'none'], { cwd: root, encoding: 'utf8', env, timeout: 120_000 });
    const out = `${r.stdout}${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
    // A clean run prints nothing (typedoc's "Found N errors and M warnings" comes only with some).
    expect(r.error, out).toBeUndefined();
    expect(r.status, out).toBe(0);
    const problems = out.split('\n').filter((l) => /^\[(warning|error)\]/.test(l));
    expect(problems).toEqual([]);
  }, 130_000);
});
