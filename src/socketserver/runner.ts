/**
 * The entry file of the worker threads and child processes that serve
 * requests for the threading and forking servers. Node runs the compiled
 * `dist/socketserver/runner.js`: plain Node cannot load TypeScript, so the
 * library must be built (`npm run build:ts`; `npm ci` does it through
 * `prepare`) even when the parent runs from source.
 */
import { isMainThread, workerData } from 'node:worker_threads';
import { JOB_ENV, JOB_KEY, runJob, type Job } from './job.js';

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
} else {
  console.error('asyncore-native socketserver runner: no job given (this file is started by the threading / forking servers)');
  process.exitCode = 2;
}
