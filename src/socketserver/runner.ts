/**
 * The entry file of the worker threads and child processes that serve
 * requests for the threading and forking servers. Node runs the compiled
 * `dist/socketserver/runner.js`: plain Node cannot load TypeScript, so the
 * library must be built (`npm run build:ts`; `npm ci` does it through
 * `prepare`) even when the parent runs from source.
 */
import { isMainThread, workerData } from 'node:worker_threads';
import { CHECK_ARG, CHECK_PREFIX, JOB_ENV, JOB_KEY, loadHandler, runJob, type Job } from './job.js';

const fromWorker = !isMainThread ? (workerData as Record<string, Job> | null)?.[JOB_KEY] : undefined;
const fromEnv = isMainThread ? process.env[JOB_ENV] : undefined;

// runJob reports a handler's errors itself; what escapes it (the wake-up
// channel unusable) ends the thread or process with the error, as an uncaught one would.
function fail(err: unknown): void {
  setImmediate(() => {
    throw err;
  });
}

if (fromWorker) {
  runJob(fromWorker).catch(fail);
} else if (fromEnv) {
  // A child process: the request's socket is fd 3, the wake-up channel fd 4.
  const job = JSON.parse(fromEnv) as Job;
  delete process.env[JOB_ENV];
  runJob({ ...job, fd: 3, wakeFd: 4 }).catch(fail);
} else if (process.argv[2] === CHECK_ARG) {
  // A server's constructor asks whether its handler module loads (see checkHandlerLoads in mixins.ts).
  const verdict = (error: string | null): void => {
    // Synchronous on a pipe (Linux), so exit() loses nothing; exit() also ends a module that left timers running.
    process.stdout.write(`\n${CHECK_PREFIX}${JSON.stringify({ error })}\n`);
    process.exit(0);
  };
  loadHandler(process.argv[3] ?? '', process.argv[4] ?? 'default').then(
    () => verdict(null),
    (err: unknown) => verdict(err instanceof Error ? err.message : String(err)),
  );
} else {
  console.error('asyncore-native socketserver runner: no job given (this file is started by the threading / forking servers)');
  process.exitCode = 2;
}
