import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    // The package's own entry points resolve to the source here (as tsconfig.json `paths` do for
    // tsc and tsx), so a bot importing 'patchbay/sdk' shares the test's module instances.
    alias: {
      'patchbay/sdk': src('./src/sdk/index.ts'),
      'patchbay/testing': src('./src/testing/index.ts'),
      'patchbay/emulator': src('./src/emulator/server.ts'),
    },
  },
  test: {
    include: ['test/**/*.test.ts', 'bots/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Tests start real servers and child processes, and most of their time is real time (speech
    // played at its pace, Daily's latencies, vendor delays): with two files at once on 2 cores the
    // CPU was ≈ 60 % idle (vmstat during the heaviest call files), so three run at once.
    fileParallelism: true,
    maxWorkers: 3,
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-output/vitest.json' },
  },
});
