/**
 * vitest global setup: compiles src/ to dist/ once per run (the package's own
 * build script: the CommonJS build and its ES module wrappers), so tests that
 * spawn plain `node` processes (forking servers, exit checks, the CLI) run
 * the current sources.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  // The compiler need not run under the sanitizer runtime of an ASan test run.
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  execFileSync(process.execPath, [path.join(root, 'scripts/build-dist.mjs')], { cwd: root, stdio: 'inherit', env });
}
