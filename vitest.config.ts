import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/build-dist.ts'],
    // The built package (dist/, CommonJS with ES module wrappers) is loaded by
    // Node itself, as a user's program loads it, never transformed by Vite.
    server: { deps: { external: [/\/dist\//] } },
    // A native crash then fails one worker, and the run still reports.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Each file checks its own fd count; files run in separate processes.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
