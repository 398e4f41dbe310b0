/**
 * The one mapping from why a worker's call ended to its outcome and detail (src/workers/child/
 * call-ending.ts): the cases where the same stage can end in different outcomes, and `Ending`
 * keeping the first end only. The stages themselves run for real in test/app/e2e.test.ts and
 * test/workers/*.
 */
import { describe, expect, it } from 'vitest';
import { DailyApiError } from '../../src/core/errors.js';
import { Ending, outcomeOf } from '../../src/workers/child/call-ending.js';

describe('outcomeOf', () => {
  it('a forward refused with 404 is a caller gone on hold; any other refusal is forward_failed', () => {
    expect(
      outcomeOf({ kind: 'forward-rejected', err: new DailyApiError('no such call', { status: 404, retryable: false }), attempts: 1 }),
    ).toEqual({
      outcome: 'caller_hangup_on_hold',
      detail: 'pinlessCallUpdate: call not found (no such call)',
    });
    expect(outcomeOf({ kind: 'forward-rejected', err: new DailyApiError('bad', { status: 400, retryable: false }), attempts: 3 })).toEqual({
      outcome: 'forward_failed',
      detail: 'pinlessCallUpdate after 3 attempt(s): bad',
    });
  });

  it('a caller who leaves: hang-up before or after connect, or completed when the bot transferred them', () => {
    const left = { kind: 'caller-left', why: 'dialin-stopped', transferTarget: undefined } as const;
    expect(outcomeOf({ ...left, connected: false }).outcome).toBe('caller_hangup_on_hold');
    expect(outcomeOf({ ...left, connected: true }).outcome).toBe('caller_hangup');
    expect(outcomeOf({ ...left, connected: true, transferTarget: '+15550001111' })).toEqual({
      outcome: 'completed',
      detail: 'transferred to +15550001111',
    });
  });

  it("a fatal client error is browser_lost only when the browser went away; the parent's hang-up keeps its reason", () => {
    expect(outcomeOf({ kind: 'client-error', code: 'browser_lost', message: 'gone' }).outcome).toBe('browser_lost');
    expect(outcomeOf({ kind: 'client-error', code: undefined, message: 'ejected' }).outcome).toBe('bot_removed');
    expect(outcomeOf({ kind: 'hangup', reason: 'shutdown', detail: undefined })).toEqual({
      outcome: 'shutdown',
      detail: 'ended by the service',
    });
    expect(outcomeOf({ kind: 'hangup', reason: 'bot_error', detail: 'uncaught: boom' })).toEqual({
      outcome: 'bot_error',
      detail: 'uncaught: boom',
    });
  });

  it('the bot ending the call keeps its outcome, with no detail when it gave none', () => {
    expect(outcomeOf({ kind: 'bot-ended', outcome: 'idle_timeout', detail: undefined })).toEqual({ outcome: 'idle_timeout' });
  });
});

describe('Ending', () => {
  it('keeps the first end, aborts its signal with that outcome, and ignores later ones', async () => {
    const ending = new Ending();
    ending.end({ kind: 'max-duration', maxCallMs: 1000 });
    ending.end({ kind: 'bot-finished' });
    expect(await ending.done).toEqual({ outcome: 'max_duration', detail: 'call reached 1000 ms' });
    expect(ending.signal.aborted).toBe(true);
    expect(ending.signal.reason).toBe('max_duration');
  });
});
