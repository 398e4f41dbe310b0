/**
 * QUEUE_TIMEOUT_MS bounds the wait for a free bot, not the call: a call that runs longer than it
 * keeps its outcome and its room, and the cap on concurrent bots holds while it runs.
 * (p-queue races a running task against the `signal` given to `add()`; found by the cluster test.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

describe('queue wait vs call length', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { QUEUE_TIMEOUT_MS: '600', MAX_CONCURRENT_BOTS: '1', MAX_QUEUED_CALLS: '2', TTS_PROVIDER: 'text' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('a call longer than QUEUE_TIMEOUT_MS ends with its own outcome, with its room until the end, one bot at a time', async () => {
    const call = stack.emulator.placeCall({
      to: NUMBER,
      script: [{ waitFor: 'connected', timeoutMs: 8_000 }, { wait: 1_500 }, { hangup: true }],
    });
    let connected = false;
    call.on('state', (s) => {
      if (s === 'connected') connected = true;
    });
    // A second call placed while the first runs must wait (cap 1) and time out in the queue, not start.
    await new Promise<void>((resolve) => call.on('state', (s) => s === 'connected' && resolve()));
    const second = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 3_000 }, { hangup: true }] });
    const end = await call.ended;
    expect(connected).toBe(true);
    expect(end.reason).toBe('caller_hangup');
    const rec = await stack.waitEnded(call.callId, 10_000);
    expect(rec.outcome).toBe('caller_hangup');
    expect(rec.timeline.ended! - rec.timeline.queued!).toBeGreaterThan(600);
    const rec2 = await stack.waitEnded(second.callId, 10_000);
    expect(rec2.outcome).toBe('queue_timeout');
    expect(rec2.timeline.worker_assigned).toBeUndefined();
    await second.ended;
  }, 30_000);
});
