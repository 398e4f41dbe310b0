/**
 * Overload (issue 11, item 2): admission by the hold budget — a burst is admitted only as far as
 * workers can reach the callers in time, the rest answered 503 + Retry-After at once, and every
 * admitted caller is connected (none left on hold); a queued call whose caller is gone (Daily's
 * `dialin.stopped`) leaves the queue at once; workers run at a lower CPU priority.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../../src/daily/signature.js';
import { expectNoLeaks, until } from '../helpers/invariants.js';
import { FIXTURE_BOTS } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const HOOK_SECRET = randomBytes(32).toString('base64');

describe('admission by the hold budget', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      // Cold workers only (no idle pool), 2 started at a time: a burst of 16 cannot all be reached in 8 s.
      env: {
        BOTS_DIR: FIXTURE_BOTS,
        DEFAULT_BOT: 'linger',
        IDLE_WORKERS: '0',
        MAX_CONCURRENT_BOTS: '16',
        MAX_QUEUED_CALLS: '16',
        HOLD_BUDGET_MS: '8000',
      },
      emulator: { holdTimeoutMs: 15_000 },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await expectNoLeaks({ stack, closed: true, timeoutMs: 15_000 });
  });

  it('a burst of 16 on cold workers: the excess is refused 503 + Retry-After at once; every admitted caller is connected', async () => {
    const calls = Array.from({ length: 16 }, () =>
      stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' as const, timeoutMs: 20_000 }, { hangup: true as const }] }),
    );
    await until(() => calls.every((c) => c.webhook?.status !== undefined), 15_000, 'every webhook answered');
    const admitted = calls.filter((c) => c.webhook?.status === 200);
    const refused = calls.filter((c) => c.webhook?.status === 503);
    expect(admitted.length + refused.length).toBe(16);
    expect(refused.length).toBeGreaterThan(0);
    expect(admitted.length).toBeGreaterThan(0);
    const refusals = stack.emulator.webhookLog.filter((w) => w.status === 503);
    expect(refusals.length).toBe(refused.length);
    // Every admitted caller gets a bot (none waits on hold until Daily gives up).
    const ends = await Promise.all(admitted.map((c) => c.ended));
    expect(ends.map((e) => e.reason)).toEqual(admitted.map(() => 'caller_hangup'));
    for (const c of refused) c.hangup();
    await expectNoLeaks({ stack, placed: calls });
  });
});

describe('a queued call whose caller is gone', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      env: {
        BOTS_DIR: FIXTURE_BOTS,
        DEFAULT_BOT: 'linger',
        MAX_CONCURRENT_BOTS: '1',
        MAX_QUEUED_CALLS: '4',
        QUEUE_TIMEOUT_MS: '60000',
        DAILY_WEBHOOK_HMAC: HOOK_SECRET,
      },
      emulator: { holdTimeoutMs: 60_000 },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await expectNoLeaks({ stack, closed: true, timeoutMs: 10_000 });
  });

  it('dialin.stopped for its room: dropped from the queue at once (caller_hangup_on_hold), its room released', async () => {
    const busy = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 20_000 }, { wait: 60_000 }] });
    await until(() => busy.state === 'connected', 15_000, 'the one bot slot taken');
    const queued = stack.emulator.placeCall({ to: NUMBER });
    await until(
      () => stack.rt.dispatcher.liveCalls().some((r) => r.callId === queued.callId && r.state === 'queued'),
      10_000,
      'the second call queued',
    );
    const room = stack.rt.dispatcher.liveCalls().find((r) => r.callId === queued.callId)!.roomName;
    queued.hangup();
    const body = JSON.stringify({
      version: '1.0.0',
      type: 'dialin.stopped',
      id: randomUUID(),
      payload: { room, session_id: randomUUID(), timestamp: Date.now() / 1000 },
      event_ts: Date.now() / 1000,
    });
    const ts = String(Math.floor(Date.now() / 1000));
    const t0 = Date.now();
    const res = await fetch(`${stack.url}/webhooks/daily`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-webhook-timestamp': ts, 'x-webhook-signature': signWebhook(body, HOOK_SECRET, ts) },
      body,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ action: 'ended' });
    const rec = await stack.waitEnded(queued.callId, 5_000);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(rec.outcome).toBe('caller_hangup_on_hold');
    expect(rec.timeline.worker_assigned).toBeUndefined();
    expect(stack.rt.dispatcher.stats()).toMatchObject({ queued: 0, active: 1 });
    busy.hangup();
    await stack.waitEnded(busy.callId);
    await expectNoLeaks({ stack, placed: [busy, queued] });
  });
});

describe('worker CPU priority', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { IDLE_WORKERS: '1', WORKER_NICE: '7' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('workers start WORKER_NICE below the server', async () => {
    await until(() => stack.rt.pool.stats().idle >= 1, 15_000, 'a warm worker');
    const w = stack.rt.pool.all()[0]!;
    expect(os.getPriority(w.pid)).toBe(Math.min(19, os.getPriority() + 7));
  });
});
