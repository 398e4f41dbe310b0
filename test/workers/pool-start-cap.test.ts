/**
 * A burst of cold starts is spread over the cores: at most max(2, CPU count) workers start at
 * once, and every waiter still gets a worker (the next start begins as one becomes ready).
 */
import { getEventListeners } from 'node:events';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/workers/parent/handle.js';
import { startStack, type Stack } from '../helpers/stack.js';

describe('worker pool: cold starts in a burst', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { IDLE_WORKERS: '0', TTS_PROVIDER: 'text', WORKER_INIT_TIMEOUT_MS: '30000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('starts at most max(2, CPUs) workers at once, serves every waiter, and leaves no abort listener behind', async () => {
    const cap = Math.max(2, os.availableParallelism());
    const n = cap + 3;
    let peak = 0;
    const sample = setInterval(() => (peak = Math.max(peak, stack.rt.pool.stats().starting)), 2);
    let workers: WorkerHandle[];
    const ac = new AbortController();
    try {
      workers = await Promise.all(Array.from({ length: n }, () => stack.rt.pool.acquire(ac.signal)));
    } finally {
      clearInterval(sample);
    }
    expect(new Set(workers.map((w) => w.pid)).size).toBe(n);
    expect(peak).toBeGreaterThanOrEqual(1);
    expect(peak).toBeLessThanOrEqual(cap);
    expect(stack.rt.pool.stats().busy).toBe(n);
    // Served waiters leave no listener on the (long-lived) signal.
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    await Promise.all(workers.map((w) => w.close()));
  }, 60_000);
});
