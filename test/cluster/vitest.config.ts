import { defineConfig } from 'vitest/config';

/** `npm run test:cluster`: the multi-replica test (nginx + three replicas), opt-in and alone. */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.spec.ts'],
    testTimeout: 180_000,
    hookTimeout: 90_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
