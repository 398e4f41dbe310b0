/**
 * Issue 21, item 15: a call is over — its bot slot free, its `call ended` line written, a drain no
 * longer waiting for it — when its worker is reaped, never when its room's paced deletion goes
 * through. Deletions are slowed here (one per 3 s) so a backlog builds behind four calls that end
 * together: before the fix each call stayed live until its own DELETE, 3 s, 6 s, 9 s, 12 s later.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EmulatedCall } from '../../src/emulator/types.js';
import { expectNoLeaks } from '../helpers/invariants.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const DELETE_INTERVAL_MS = 3_000;
const CALLS = 4;

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** Places `n` calls that hang up together once all are connected; resolves with each hang-up time by callId. */
async function callsThatHangUpTogether(s: Stack, n: number): Promise<{ calls: EmulatedCall[]; hungUpAtMs: Map<string, number> }> {
  const calls = Array.from({ length: n }, () =>
    s.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 30_000 }] }),
  );
  await Promise.all(
    calls.map(
      (c) => new Promise<void>((resolve) => (c.state === 'connected' ? resolve() : c.on('state', (st) => st === 'connected' && resolve()))),
    ),
  );
  // Let the bots start (a hang-up before the bot's first words is still a hang-up; this keeps it plain).
  await new Promise((r) => setTimeout(r, 300));
  const hungUpAtMs = new Map<string, number>();
  for (const c of calls) {
    hungUpAtMs.set(c.callId, Date.now());
    c.hangup();
  }
  return { calls, hungUpAtMs };
}

describe('hang-up frees the call at once; room deletion is off the call', () => {
  it('calls ending together are over within 1 s of their hang-up while their rooms wait for deletion', async () => {
    stack = await startStack({
      env: { MAX_CONCURRENT_BOTS: String(CALLS), IDLE_WORKERS: String(CALLS), DAILY_ROOM_DELETE_INTERVAL_MS: String(DELETE_INTERVAL_MS) },
    });
    const s = stack;
    await waitIdleWorkers(s, CALLS);
    const endedAtMs = new Map<string, number>();
    s.rt.dispatcher.on('call-ended', (r) => endedAtMs.set(r.callId, Date.now()));
    const { calls, hungUpAtMs } = await callsThatHangUpTogether(s, CALLS);
    await waitUntil(() => endedAtMs.size === CALLS, 15_000);
    const lagMs = calls.map((c) => endedAtMs.get(c.callId)! - hungUpAtMs.get(c.callId)!);
    expect(s.ended.map((r) => r.outcome)).toEqual(calls.map(() => 'caller_hangup'));
    // Over within 1 s of the hang-up, every one (before: the k-th waited for the k-th DELETE, k × 3 s).
    expect(Math.max(...lagMs)).toBeLessThan(1_000);
    // The slots are free and the dispatcher idle while most rooms still wait for their DELETE.
    expect(s.rt.dispatcher.stats()).toMatchObject({ active: 0, queued: 0 });
    expect(s.rt.dispatcher.liveCalls()).toEqual([]);
    expect(s.emulator.snapshot().rooms.length).toBeGreaterThanOrEqual(CALLS - 1);
    // …and they are deleted, paced, after.
    await expectNoLeaks({ stack: s, placed: calls, timeoutMs: CALLS * DELETE_INTERVAL_MS + 10_000 });
  }, 60_000);

  it('a drain ends when the calls are over, not when their rooms are deleted', async () => {
    stack = await startStack({
      env: { MAX_CONCURRENT_BOTS: String(CALLS), IDLE_WORKERS: String(CALLS), DAILY_ROOM_DELETE_INTERVAL_MS: String(DELETE_INTERVAL_MS) },
    });
    const s = stack;
    await waitIdleWorkers(s, CALLS);
    const { calls } = await callsThatHangUpTogether(s, CALLS);
    const t0 = Date.now();
    // A drain with plenty of time: it must not spend it on DELETE /rooms (before: ≈ 4 × 3 s).
    await s.rt.dispatcher.drain(30_000);
    const drainMs = Date.now() - t0;
    expect(s.ended.map((r) => r.outcome)).toEqual(calls.map(() => 'caller_hangup'));
    expect(drainMs).toBeLessThan(2 * DELETE_INTERVAL_MS);
  }, 60_000);
});

async function waitIdleWorkers(s: Stack, n: number): Promise<void> {
  await waitUntil(() => s.rt.pool.stats().idle >= n, 30_000);
}

async function waitUntil(f: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
