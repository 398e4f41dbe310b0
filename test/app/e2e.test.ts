/**
 * End to end through the real emulator, the real app and real worker processes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signPinless } from '../../src/daily/signature.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function signed(stack: Stack, body: string, opts: { secret?: string; ts?: string } = {}) {
  const ts = opts.ts ?? String(Math.floor(Date.now() / 1000));
  return {
    'content-type': 'application/json',
    'x-pinless-timestamp': ts,
    'x-pinless-signature': signPinless(body, opts.secret ?? stack.secret, ts),
  };
}

/** The stack must be back to idle: no live call, no busy worker, no room left. */
async function expectClean(stack: Stack): Promise<void> {
  await until(
    () => {
      const s = stack.rt.dispatcher.stats();
      return (
        s.active === 0 &&
        s.queued === 0 &&
        s.admitting === 0 &&
        stack.rt.pool.stats().busy === 0 &&
        stack.emulator.snapshot().rooms.length === 0
      );
    },
    10_000,
    'a clean stack',
  );
}

describe('pinless dial-in end to end', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ emulator: { holdTimeoutMs: 8_000 } });
  });
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(() => {
    stack.emulator.faults.clear();
  });

  it('connects a signed call; the bot answers, echoes digits, and the caller hangs up', async () => {
    const call = stack.emulator.placeCall({
      to: NUMBER,
      from: '+15557654321',
      script: [{ waitFor: 'say', match: 'Hello' }, { press: '42#' }, { waitFor: 'say', match: '4 2' }, { hangup: true }],
    });
    const end = await call.ended;
    expect(end.reason).toBe('caller_hangup');
    const botLines = end.transcript.filter((l) => l.who === 'bot').map((l) => l.text);
    expect(botLines[0]).toMatch(/Hello! You reached patchbay at \+15550001000/);
    expect(botLines.join(' ')).toMatch(/You pressed 4 2\./);
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('caller_hangup');
    const t = rec.timeline;
    // The update comes after dialin-ready, and the caller is connected after it.
    expect(t.dialin_ready).toBeDefined();
    expect(t.forward_sent!).toBeGreaterThanOrEqual(t.dialin_ready!);
    expect(t.connected!).toBeGreaterThanOrEqual(t.forward_sent!);
    expect(rec.botEvents.find((e) => e.kind === 'digits')?.value).toBe('42');
    await expectClean(stack);
  });

  it('forwards exactly once even when dialin-ready fires twice', async () => {
    stack.emulator.faults.dialinReady = 'twice';
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
    const end = await call.ended;
    expect(end.reason).toBe('caller_hangup');
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('caller_hangup');
    expect(stack.emulator.requestLog.filter((r) => r.path === '/dialin/pinlessCallUpdate' && r.callId === call.callId)).toHaveLength(1);
    await expectClean(stack);
  });

  it('retries pinlessCallUpdate on 5xx and 429, then connects', async () => {
    stack.emulator.faults.inject({ path: '/dialin/pinlessCallUpdate', status: 503, times: 1 });
    stack.emulator.faults.inject({ path: '/dialin/pinlessCallUpdate', status: 429, times: 1, retryAfterSec: 0 });
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
    const end = await call.ended;
    expect(end.reason).toBe('caller_hangup');
    expect(stack.emulator.requestLog.filter((r) => r.path === '/dialin/pinlessCallUpdate' && r.callId === call.callId)).toHaveLength(3);
    expect((await stack.waitEnded(call.callId)).outcome).toBe('caller_hangup');
    await expectClean(stack);
  });

  it(
    'does not retry a 4xx on its worker: forward_failed after one attempt, then a fresh worker connects the caller',
    { timeout: 60_000 },
    async () => {
      stack.emulator.faults.inject({ path: '/dialin/pinlessCallUpdate', status: 400, times: 1 });
      const call = stack.emulator.placeCall({ to: NUMBER });
      const rec = await stack.waitEnded(call.callId, 50_000);
      // Nothing was forwarded: the call is retried on a fresh worker (src/workers/parent/fallback.ts).
      expect(rec.recovery).toHaveLength(1);
      expect(rec.recovery?.[0]).toMatchObject({ kind: 'retry', after: 'forward_failed' });
      expect(rec.recovery?.[0]?.detail).toMatch(/after 1 attempt/);
      expect(rec.timeline.connected).toBeDefined();
      // One update per worker: the refused one, and the retry's.
      expect(stack.emulator.requestLog.filter((r) => r.path === '/dialin/pinlessCallUpdate' && r.callId === call.callId)).toHaveLength(2);
      await expectClean(stack);
      call.hangup();
      await call.ended;
    },
  );

  // Three attempts of 4 s each (two retries on fresh workers) and the apology: ≈ 15 s on an idle
  // machine, more on a loaded one.
  it('ends with dialin_timeout when dialin-ready never comes, and cleans up', { timeout: 60_000 }, async () => {
    stack.emulator.faults.dialinReady = 'never';
    const call = stack.emulator.placeCall({ to: NUMBER });
    const rec = await stack.waitEnded(call.callId, 50_000);
    expect(rec.outcome).toBe('dialin_timeout');
    expect(stack.emulator.requestLog.filter((r) => r.path === '/dialin/pinlessCallUpdate' && r.callId === call.callId)).toHaveLength(0);
    await expectClean(stack);
    call.hangup();
    await call.ended;
  });

  it('records a caller who hangs up on hold', async () => {
    stack.emulator.faults.dialinReadyDelayMs = 300;
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ wait: 50 }, { hangup: true }] });
    const end = await call.ended;
    expect(end.reason).toBe('caller_hangup_on_hold');
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('caller_hangup_on_hold');
    await expectClean(stack);
  });

  it('a worker killed with SIGKILL mid-call frees its slot and deletes its room', async () => {
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { wait: 60_000 }] });
    await until(() => call.state === 'connected', 10_000, 'connected');
    const live = stack.rt.dispatcher.liveCalls().find((r) => r.callId === call.callId);
    expect(live?.workerPid).toBeGreaterThan(0);
    process.kill(live!.workerPid!, 'SIGKILL');
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('worker_crashed');
    await call.ended;
    await expectClean(stack);
    // The replica still works.
    const next = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
    expect((await next.ended).reason).toBe('caller_hangup');
  });
});

describe('webhook input handling', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  const body = (callId = `test-${Math.random()}`) =>
    JSON.stringify({ To: NUMBER, From: '+15551112222', callId, callDomain: stack.emulator.callDomain, sipHeaders: {} });

  it('answers probe bodies with 200 and starts no bot', async () => {
    for (const probe of ['{"To":"+15550001000"}', '{"test":"test"}', '{"Test":"test"}']) {
      const res = await fetch(`${stack.url}/dialin`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: probe });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok', probe: true });
    }
    expect(stack.emulator.snapshot().rooms).toHaveLength(0);
    expect(stack.rt.dispatcher.stats().active).toBe(0);
  });

  it.each([
    ['missing signature', (_b: string) => ({ 'content-type': 'application/json' }), 'missing'],
    ['forged signature', (b: string) => signed(stack, b, { secret: Buffer.from('not the secret at all').toString('base64') }), 'mismatch'],
    ['stale timestamp', (b: string) => signed(stack, b, { ts: String(Math.floor(Date.now() / 1000) - 3600) }), 'stale'],
    ['garbage timestamp', (b: string) => ({ ...signed(stack, b), 'x-pinless-timestamp': 'soon' }), 'bad_timestamp'],
  ])('refuses a %s with 401 and starts no bot', async (_name, headers, reason) => {
    const b = body();
    const res = await fetch(`${stack.url}/dialin`, { method: 'POST', headers: headers(b), body: b });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_signature', reason });
    expect(stack.emulator.snapshot().rooms).toHaveLength(0);
  });

  it('refuses a body changed after signing', async () => {
    const b = body();
    const res = await fetch(`${stack.url}/dialin`, {
      method: 'POST',
      headers: signed(stack, b),
      body: b.replace('+15551112222', '+15559999999'),
    });
    expect(res.status).toBe(401);
  });

  it('answers 400 for missing fields, naming them', async () => {
    const b = JSON.stringify({ To: NUMBER, From: '+15551112222', callDomain: 'x' });
    const res = await fetch(`${stack.url}/dialin`, { method: 'POST', headers: signed(stack, b), body: b });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/callId/);
  });

  it('answers 400 for wrong types, invalid JSON and prototype keys; 415 for other content types; 413 when too big', async () => {
    const wrongType = JSON.stringify({ To: NUMBER, From: 'x', callId: 5, callDomain: 'd' });
    expect((await fetch(`${stack.url}/dialin`, { method: 'POST', headers: signed(stack, wrongType), body: wrongType })).status).toBe(400);
    const bad = '{"To": ';
    expect((await fetch(`${stack.url}/dialin`, { method: 'POST', headers: signed(stack, bad), body: bad })).status).toBe(400);
    const proto = '{"__proto__": {"x": 1}, "To": "1", "From": "2", "callId": "3", "callDomain": "4"}';
    expect((await fetch(`${stack.url}/dialin`, { method: 'POST', headers: signed(stack, proto), body: proto })).status).toBe(400);
    const text = await fetch(`${stack.url}/dialin`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expect(text.status).toBe(415);
    const huge = JSON.stringify({ To: NUMBER, From: 'x'.repeat(100_000), callId: 'c', callDomain: 'd' });
    expect((await fetch(`${stack.url}/dialin`, { method: 'POST', headers: signed(stack, huge), body: huge })).status).toBe(413);
    expect(stack.emulator.snapshot().rooms).toHaveLength(0);
  });

  it('a repeated webhook for one callId starts one bot and gets the same answer', async () => {
    // A real held call, whose webhook we replay (twice at once, then once more).
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { wait: 300 }, { hangup: true }] });
    await until(() => call.webhook?.status === 200, 5_000, 'the first webhook');
    const b = JSON.stringify({ To: NUMBER, From: call.from, callId: call.callId, callDomain: call.callDomain, sipHeaders: {} });
    const [r1, r2] = await Promise.all(
      [1, 2].map(() => fetch(`${stack.url}/dialin`, { method: 'POST', headers: signed(stack, b), body: b })),
    );
    const a1 = (await r1!.json()) as { id: string; roomUrl: string; duplicate: boolean };
    const a2 = (await r2!.json()) as { id: string; roomUrl: string; duplicate: boolean };
    expect(r1!.status).toBe(200);
    expect(a1.duplicate).toBe(true);
    expect(a2.id).toBe(a1.id);
    expect(a2.roomUrl).toBe(a1.roomUrl);
    expect(stack.emulator.snapshot().rooms).toHaveLength(1);
    expect((await call.ended).reason).toBe('caller_hangup');
    const records = stack.ended.filter((r) => r.callId === call.callId);
    await stack.waitEnded(call.callId);
    expect(stack.ended.filter((r) => r.callId === call.callId)).toHaveLength(1);
    expect(records.length).toBeLessThanOrEqual(1);
    await expectClean(stack);
  });
});

describe('admission under a burst', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      env: { MAX_CONCURRENT_BOTS: '2', MAX_QUEUED_CALLS: '2', QUEUE_TIMEOUT_MS: '8000', IDLE_WORKERS: '2' },
      emulator: { holdTimeoutMs: 30_000 },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('3× MAX_CONCURRENT_BOTS calls at once: all end with a clear outcome, none lost, never more than the cap', async () => {
    let maxActive = 0;
    stack.rt.dispatcher.on('call-updated', () => {
      maxActive = Math.max(maxActive, stack.rt.pool.stats().busy, stack.rt.dispatcher.stats().active);
    });
    const calls = Array.from({ length: 6 }, () =>
      stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { wait: 200 }, { hangup: true }] }),
    );
    // Every webhook is answered: 200 (admitted) or 503 + Retry-After (this replica is full).
    await until(() => calls.every((c) => c.webhook?.status !== undefined), 15_000, 'every webhook answered');
    const refused = calls.filter((c) => c.webhook?.status === 503);
    const admitted = calls.filter((c) => c.webhook?.status === 200);
    expect(admitted.length + refused.length).toBe(6);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(admitted.length).toBeGreaterThanOrEqual(4);
    // A refused caller would be retried elsewhere behind a load balancer; here they give up.
    for (const c of refused) c.hangup();
    const ends = await Promise.all(calls.map((c) => c.ended));
    for (const c of refused) expect(c.reason).toBe('caller_hangup_on_hold');
    for (const c of admitted) {
      const rec = await stack.waitEnded(c.callId);
      expect(['caller_hangup', 'queue_timeout', 'caller_hangup_on_hold']).toContain(rec.outcome);
      // Exactly one outcome per admitted call.
      expect(stack.ended.filter((r) => r.callId === c.callId)).toHaveLength(1);
    }
    expect(ends.filter((e) => e.reason === 'caller_hangup').length).toBeGreaterThanOrEqual(2);
    expect(maxActive).toBeLessThanOrEqual(2);
    // Refused calls left nothing behind.
    for (const c of refused) expect(stack.ended.some((r) => r.callId === c.callId)).toBe(false);
    await expectClean(stack);
  });
});

describe('rooms with two SIP endpoints', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { DIALIN_SIP_ENDPOINTS: '2' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('dialin-ready fires per endpoint; the call is forwarded once, to the first ready endpoint', async () => {
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
    await until(() => call.state !== 'held', 10_000, 'the call to leave hold');
    const room = stack.emulator.snapshot().rooms[0];
    expect(room?.sipEndpoints).toHaveLength(2);
    expect((await call.ended).reason).toBe('caller_hangup');
    const updates = stack.emulator.requestLog.filter((r) => r.path === '/dialin/pinlessCallUpdate' && r.callId === call.callId);
    expect(updates).toHaveLength(1);
    expect(updates[0]!.status).toBe(200);
    expect((await stack.waitEnded(call.callId)).outcome).toBe('caller_hangup');
  });
});
