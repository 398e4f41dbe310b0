import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'bots/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Tests start real servers and child processes; two cores, so keep files mostly serial.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
