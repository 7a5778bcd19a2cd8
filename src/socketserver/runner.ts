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

if (fromWorker) {
  await runJob(fromWorker);
} else if (fromEnv) {
  // A child process: the request's socket is fd 3, the wake-up channel fd 4.
  const job = JSON.parse(fromEnv) as Job;
  delete process.env[JOB_ENV];
  await runJob({ ...job, fd: 3, wakeFd: 4 });
} else {
  console.error('asyncore-native socketserver runner: no job given (this file is started by the threading / forking servers)');
  process.exitCode = 2;
}
