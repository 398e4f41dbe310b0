/**
 * The worker pool with real forked workers: warm starts from pre-started workers, a replacement
 * started behind each one taken, cold starts only when the pool is empty, and the init timeout.
 */
import { describe, expect, test } from 'vitest';
import { FIXTURE_BOTS, isAlive, waitFor, waitRecord } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const base = { BOTS_DIR: FIXTURE_BOTS, DEFAULT_BOT: 'linger', WORKER_CLOSE_TIMEOUT_MS: '1000' };

async function lingerCall(stack: Stack) {
  const emulated = stack.emulator.placeCall({ to: NUMBER });
  const ended = stack.waitEnded(emulated.callId, 30_000);
  ended.catch(() => undefined);
  const record = await waitRecord(stack, emulated.callId, (r) => r.timeline.bot_started !== undefined || r.state === 'ended');
  return { emulated, ended, record };
}

describe('worker pool', () => {
  test('warm start: a pre-started worker takes the call at once and a replacement starts behind it', async () => {
    const stack = await startStack({ env: { ...base, IDLE_WORKERS: '2' } });
    try {
      await waitFor('two warm workers', () => stack.rt.pool.stats().idle === 2, 30_000);
      const warmPids = stack.rt.pool.all().map((w) => w.pid);
      const { emulated, ended, record } = await lingerCall(stack);
      expect(record.warmStart).toBe(true);
      expect(warmPids).toContain(record.workerPid);
      // Taking a warm worker costs (almost) nothing: no fork on the call's path.
      const assignMs = record.timeline.worker_assigned! - record.timeline.queued!;
      expect(assignMs).toBeLessThan(500);
      const s = stack.rt.pool.stats();
      expect(s).toMatchObject({ busy: 1, coldStarts: 0, warmStarts: 1 });
      // IDLE_WORKERS kept: one still idle, one on its way (or ready already).
      expect(s.idle + s.starting).toBe(2);
      await waitFor('the pool refilled', () => stack.rt.pool.stats().idle === 2, 30_000);
      await emulated.press('1');
      expect((await ended).outcome).toBe('completed');
      await waitFor('the used worker reaped', () => !isAlive(record.workerPid!), 10_000);
      // The call is over at its outcome; the pool counts the worker until its exit is handled.
      await waitFor('the pool back to 2 idle and none busy', () => {
        const st = stack.rt.pool.stats();
        return st.idle === 2 && st.busy === 0;
      });
    } finally {
      await stack.close();
    }
  });

  test('a handed-out worker is replaced once its caller has left hold; with WORKER_REFILL_DEFER_MAX_MS=0 at once (issue 27)', async () => {
    // A held caller for ≈ 1 s (Daily readying the SIP endpoint): a replacement started at the
    // hand-out would boot on the cores the held call needs.
    const emulator = { latencies: { dialinReadyMs: 1_000 } };
    for (const [deferMaxMs, deferred] of [
      ['8000', true],
      ['0', false],
    ] as const) {
      const stack = await startStack({ env: { ...base, IDLE_WORKERS: '1', WORKER_REFILL_DEFER_MAX_MS: deferMaxMs }, emulator });
      try {
        await waitFor('one warm worker', () => stack.rt.pool.stats().idle === 1, 30_000);
        const before = new Set(stack.rt.pool.all().map((w) => w.pid));
        const { emulated, ended, record } = await lingerCall(stack);
        expect(record.warmStart).toBe(true);
        const replacement = await waitFor('a replacement', () => stack.rt.pool.all().find((w) => !before.has(w.pid)), 30_000);
        const connected = record.timeline.connected!;
        if (deferred) expect(replacement.startedAtMs).toBeGreaterThanOrEqual(connected);
        else expect(replacement.startedAtMs).toBeLessThan(record.timeline.dialin_ready!);
        await emulated.press('1');
        expect((await ended).outcome).toBe('completed');
      } finally {
        await stack.close();
      }
    }
  });

  test('cold start only when the pool is empty (IDLE_WORKERS=0, and a second call beyond the warm one)', async () => {
    const stack = await startStack({ env: { ...base, IDLE_WORKERS: '0' } });
    try {
      expect(stack.rt.pool.stats()).toMatchObject({ idle: 0, starting: 0 });
      const { emulated, ended, record } = await lingerCall(stack);
      expect(record.warmStart).toBe(false);
      const assignMs = record.timeline.worker_assigned! - record.timeline.queued!;
      const workerStartMs = await waitFor('worker start time', () => {
        const w = stack.rt.pool.all().find((x) => x.pid === record.workerPid);
        return w?.readyAtMs !== undefined ? w.readyAtMs - w.startedAtMs : undefined;
      });
      // The call waited for the fork: at least the worker's own start time.
      expect(assignMs).toBeGreaterThanOrEqual(workerStartMs - 50);
      expect(stack.rt.pool.stats()).toMatchObject({ coldStarts: 1, warmStarts: 0, idle: 0, starting: 0 });
      await emulated.press('1');
      expect((await ended).outcome).toBe('completed');
    } finally {
      await stack.close();
    }

    const stack2 = await startStack({ env: { ...base, IDLE_WORKERS: '1', MAX_CONCURRENT_BOTS: '2' } });
    try {
      await waitFor('a warm worker', () => stack2.rt.pool.stats().idle === 1, 30_000);
      const [a, b] = await Promise.all([lingerCall(stack2), lingerCall(stack2)]);
      expect([a.record.warmStart, b.record.warmStart].sort()).toEqual([false, true]);
      expect(stack2.rt.pool.stats()).toMatchObject({ coldStarts: 1, warmStarts: 1, busy: 2 });
      await Promise.all([a.emulated.press('1'), b.emulated.press('2')]);
      expect((await a.ended).outcome).toBe('completed');
      expect((await b.ended).outcome).toBe('completed');
    } finally {
      await stack2.close();
    }
  });

  test('an idle worker that dies is replaced, and the next call still starts warm', async () => {
    const stack = await startStack({ env: { ...base, IDLE_WORKERS: '1' } });
    try {
      const first = await waitFor('a warm worker', () => stack.rt.pool.all().find((w) => w.state === 'idle'), 30_000);
      process.kill(first.pid, 'SIGKILL');
      const second = await waitFor(
        'a new warm worker',
        () => stack.rt.pool.all().find((w) => w.state === 'idle' && w.pid !== first.pid),
        30_000,
      );
      expect(isAlive(first.pid)).toBe(false);
      expect(stack.rt.pool.stats()).toMatchObject({ idle: 1, busy: 0, coldStarts: 0 });
      const { emulated, ended, record } = await lingerCall(stack);
      expect(record.warmStart).toBe(true);
      expect(record.workerPid).toBe(second.pid);
      await emulated.press('1');
      expect((await ended).outcome).toBe('completed');
      // Nobody's call was charged for the dead idle worker.
      expect(stack.ended.map((r) => r.outcome)).toEqual(['completed']);
    } finally {
      await stack.close();
    }
  });

  test('a draining replica does not replace idle workers', async () => {
    const stack = await startStack({ env: { ...base, IDLE_WORKERS: '1' } });
    try {
      const first = await waitFor('a warm worker', () => stack.rt.pool.all().find((w) => w.state === 'idle'), 30_000);
      await stack.rt.dispatcher.drain(0);
      process.kill(first.pid, 'SIGKILL');
      await waitFor('the idle worker gone', () => !isAlive(first.pid) || undefined, 10_000);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(stack.rt.pool.stats()).toMatchObject({ idle: 0, starting: 0, busy: 0 });
    } finally {
      await stack.close();
    }
  });

  test('init timeout: a worker that never becomes ready is killed and replaced; a call that cannot get one ends worker_crashed', async () => {
    const INIT_TIMEOUT_MS = 800;
    const stack = await startStack({
      env: { ...base, IDLE_WORKERS: '1', WORKER_INIT_TIMEOUT_MS: String(INIT_TIMEOUT_MS), QUEUE_TIMEOUT_MS: '20000' },
      // Every worker preloads this bot, whose prewarm never finishes.
      runtime: { preloadBots: ['slowstart'] },
    });
    try {
      const first = await waitFor('a starting worker', () => stack.rt.pool.all()[0]);
      const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        first.once('exit', (code, signal) => resolve({ code, signal })),
      );
      const livedMs = Date.now() - first.startedAtMs;
      expect(exit.signal).toBe('SIGKILL');
      expect(first.readyAtMs).toBeUndefined();
      expect(livedMs).toBeGreaterThanOrEqual(INIT_TIMEOUT_MS - 50);
      expect(isAlive(first.pid)).toBe(false);
      // Replaced.
      await waitFor('a replacement worker', () => stack.rt.pool.all().some((w) => w.pid !== first.pid), 10_000);

      const emulated = stack.emulator.placeCall({ to: NUMBER });
      const done = await stack.waitEnded(emulated.callId, 30_000);
      expect(done.outcome).toBe('worker_crashed');
      expect(done.detail).toMatch(/no worker: workers fail to start \(\d+ in a row\)/);
      expect(done.workerPid).toBeUndefined();
      await waitFor('the room deleted', () => !stack.emulator.snapshot().rooms.some((r) => r.name === done.roomName), 10_000);
      await waitFor('the slot to be freed', () => stack.rt.dispatcher.stats().active === 0, 10_000);
      expect(stack.rt.pool.stats().idle).toBe(0);
    } finally {
      await stack.close();
    }
    // Nothing left running: pool.close() killed the starting workers.
    expect(stack.rt.pool.all().filter((w) => isAlive(w.pid))).toHaveLength(0);
  });
});
