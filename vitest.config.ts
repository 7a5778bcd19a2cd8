import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/build-dist.ts'],
    // A native crash then fails one worker, and the run still reports.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Each file checks its own fd count; files run in separate processes.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
