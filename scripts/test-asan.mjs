// Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into
// build-asan/ and runs the test suite against it. The ASan runtime must be
// preloaded into node; LeakSanitizer findings inside vite's own native
// bundler are suppressed by name (scripts/lsan.supp), nothing else.
import { spawnSync, execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const b = spawnSync(process.execPath, [path.join(root, 'scripts/build-native.mjs')], {
  stdio: 'inherit',
  env: { ...process.env, ASYNCORE_NATIVE_SANITIZE: '1' },
});
if (b.status !== 0) process.exit(b.status ?? 1);
const libasan = execFileSync('gcc', ['-print-file-name=libasan.so']).toString().trim();
const env = {
  ...process.env,
  ASYNCORE_NATIVE_BUILD: 'build-asan',
  LD_PRELOAD: libasan,
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1:halt_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  LSAN_OPTIONS: `suppressions=${path.join(root, 'scripts/lsan.supp')}:print_suppressions=0`,
  // For the long-running programs the tests start and stop with a signal
  // (test/helpers/cli.ts: the CLI, the examples): the same ASan and UBSan,
  // but no exit-time leak check. LeakSanitizer's tracer itself sometimes
  // crashes at such a node's exit ("Tracer caught signal 11 ... LeakSanitizer
  // has encountered a fatal error"), seen in about one run in three; the
  // addon code those programs run is leak-checked in the test processes.
  ASYNCORE_ASAN_CHILD_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
};
const r = spawnSync(process.execPath, [path.join(root, 'scripts/run-tests.mjs'), ...process.argv.slice(2)], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
