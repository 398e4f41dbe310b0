/**
 * pinlessCallUpdate whose answer is lost after Daily carried it out (the emulator's `answerDelayMs`
 * fault): the retry finds the call no longer on hold (409). The caller is on the way: the call
 * connects and the bot runs, instead of ending `forward_failed` with the caller left in an empty room.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

describe('a pinlessCallUpdate carried out but never answered', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { PINLESS_UPDATE_TIMEOUT_MS: '500', PINLESS_UPDATE_DEADLINE_MS: '4000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('the retry\'s 409 "not on hold" counts as forwarded: the caller is connected and served', async () => {
    stack.emulator.faults.inject({ method: 'POST', path: '/dialin/pinlessCallUpdate', answerDelayMs: 2_000 });
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', match: 'Hello' }, { hangup: true }] });
    const end = await call.ended;
    expect(end.reason).toBe('caller_hangup');
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('caller_hangup');
    // The retry was refused (the first had been carried out; its answer reached nobody).
    const updates = stack.emulator.requestLog.filter((r) => r.path.endsWith('/pinlessCallUpdate') && r.callId === call.callId);
    expect(updates.filter((u) => u.status === 409)).toHaveLength(1);
    expect(rec.timeline.forwarded).toBeDefined();
    expect(rec.timeline.connected).toBeDefined();
  });
});
