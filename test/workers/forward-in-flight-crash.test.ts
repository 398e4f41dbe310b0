/**
 * A worker killed while its pinlessCallUpdate is in flight: Daily may carry the update out (the
 * caller is then in the room), so the parent must not retry the call on a fresh worker with a
 * second update for the same callId. It records the crash, and the caller is hung up, not left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectNoLeaks, until } from '../helpers/invariants.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

describe('worker killed with its pinlessCallUpdate in flight', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { PINLESS_UPDATE_TIMEOUT_MS: '4000' }, emulator: { latencies: { pinlessUpdateMs: 1_500 } } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('one update only, outcome worker_crashed, nothing left', async () => {
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 20_000 }, { wait: 30_000 }] });
    await until(
      () => stack.rt.dispatcher.liveCalls().some((r) => r.callId === call.callId && r.timeline.forward_sent !== undefined),
      15_000,
      'update sent',
    );
    const live = stack.rt.dispatcher.liveCalls().find((r) => r.callId === call.callId)!;
    const killedAt = Date.now();
    process.kill(live.workerPid!, 'SIGKILL');
    const rec = await stack.waitEnded(call.callId, 30_000);
    expect(rec.outcome).toBe('worker_crashed');
    expect(rec.recovery ?? []).toEqual([]);
    // No second update after the kill (the killed worker's own, cut off, is never answered).
    await new Promise((r) => setTimeout(r, 2_500));
    const later = stack.emulator.requestLog.filter((r) => r.atMs >= killedAt && r.path === '/dialin/pinlessCallUpdate');
    expect(later).toEqual([]);
    await call.ended;
    await expectNoLeaks({ stack, placed: [call] });
  }, 60_000);
});
