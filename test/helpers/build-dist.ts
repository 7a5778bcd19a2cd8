/**
 * vitest global setup: compiles src/ to dist/ once per run, so tests that
 * spawn plain `node` processes (forking servers, exit checks, the CLI) run
 * the current sources.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  // The compiler need not run under the sanitizer runtime of an ASan test run.
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit', env });
}
