/**
 * POST /webhooks/daily on a real stack (emulator + app + forked workers on 127.0.0.1), with
 * events signed by hand and events the emulator delivers for real through its /v1/webhooks.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/core/config.js';
import { signWebhook } from '../../src/daily/signature.js';
import { checkBasicAuth, EventDeduper, isWebhookVerification } from '../../src/daily/webhook-events.js';
import type { CallRecord } from '../../src/admission/dispatcher.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const HOOK_SECRET = randomBytes(32).toString('base64');

function event(type: string, payload: Record<string, unknown>, id: string = randomUUID()) {
  return { version: '1.0.0', type, id, payload, event_ts: Date.now() / 1000 };
}

function signedHeaders(body: string, secret = HOOK_SECRET, tsSec = Math.floor(Date.now() / 1000)): Record<string, string> {
  const ts = String(tsSec);
  return { 'content-type': 'application/json', 'x-webhook-timestamp': ts, 'x-webhook-signature': signWebhook(body, secret, ts) };
}

async function post(stack: Stack, body: string, headers: Record<string, string>) {
  const res = await fetch(`${stack.url}/webhooks/daily`, { method: 'POST', headers, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function api<T = Record<string, unknown>>(
  stack: Stack,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const res = await fetch(`${stack.emulator.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as T };
}

/** Resolves when `pred` holds for a live call record (checked on every call-updated). */
function waitLive(stack: Stack, pred: (r: CallRecord) => boolean, timeoutMs = 20_000): Promise<CallRecord> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const r = stack.rt.dispatcher.liveCalls().find(pred);
      if (!r) return false;
      clearTimeout(timer);
      stack.rt.dispatcher.off('call-updated', check);
      resolve(r);
      return true;
    };
    const timer = setTimeout(() => {
      stack.rt.dispatcher.off('call-updated', check);
      reject(new Error('no live call matched in time'));
    }, timeoutMs);
    stack.rt.dispatcher.on('call-updated', check);
    check();
  });
}

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000, everyMs = 25): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

describe('domain webhook settings and helpers', () => {
  it('DAILY_WEBHOOK_HMAC and DAILY_WEBHOOK_BASIC_AUTH are validated and named in the error', () => {
    const c = loadConfig({
      DAILY_WEBHOOK_HMAC: ` ${HOOK_SECRET} , ${HOOK_SECRET.slice(4)} `,
      DAILY_WEBHOOK_BASIC_AUTH: 'daily:pw:with:colons',
    });
    expect(c.daily.webhookHmacSecrets).toEqual([HOOK_SECRET, HOOK_SECRET.slice(4)]);
    expect(c.daily.webhookBasicAuth).toBe('daily:pw:with:colons');
    expect(c.daily.webhookReconcileGraceMs).toBe(3_000);
    expect(loadConfig({}).daily.webhookHmacSecrets).toEqual([]);
    expect(() => loadConfig({ DAILY_WEBHOOK_HMAC: 'not base64!' })).toThrow(/DAILY_WEBHOOK_HMAC/);
    expect(() => loadConfig({ DAILY_WEBHOOK_BASIC_AUTH: 'no-colon' })).toThrow(ConfigError);
    expect(() => loadConfig({ DAILY_WEBHOOK_RECONCILE_GRACE_MS: '-1' })).toThrow(/DAILY_WEBHOOK_RECONCILE_GRACE_MS/);
    expect(loadConfig({}).daily.webhookAllowUnsigned).toBe(false);
    expect(loadConfig({ DAILY_WEBHOOK_ALLOW_UNSIGNED: 'true' }).daily.webhookAllowUnsigned).toBe(true);
    expect(() => loadConfig({ DAILY_WEBHOOK_ALLOW_UNSIGNED: 'true', NODE_ENV: 'production', DAILY_PINLESS_HMAC: 'YWJj' })).toThrow(
      /DAILY_WEBHOOK_ALLOW_UNSIGNED/,
    );
  });

  it('basic auth compares user:password exactly', () => {
    const h = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(checkBasicAuth(h('daily:pw'), 'daily:pw')).toBe(true);
    expect(checkBasicAuth(h('daily:pw2'), 'daily:pw')).toBe(false);
    expect(checkBasicAuth(h('daily:p'), 'daily:pw')).toBe(false);
    expect(checkBasicAuth(h('daily:pwx'), 'daily:pw')).toBe(false);
    expect(checkBasicAuth(undefined, 'daily:pw')).toBe(false);
    expect(checkBasicAuth('Bearer x', 'daily:pw')).toBe(false);
  });

  it('recognises only the verification body as a probe; dedupes ids up to its bound', () => {
    expect(isWebhookVerification({ test: 'test' })).toBe(true);
    expect(isWebhookVerification({ test: 'test', type: 'dialin.stopped' })).toBe(false);
    expect(isWebhookVerification([])).toBe(false);
    const d = new EventDeduper({ ttlMs: 60_000, max: 2 });
    expect([d.firstSeen('a'), d.firstSeen('a'), d.firstSeen('b'), d.firstSeen('c'), d.size]).toEqual([true, false, true, true, 2]);
    // The oldest id was evicted by the bound.
    expect(d.firstSeen('a')).toBe(true);
  });
});

describe('POST /webhooks/daily: verification', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { DAILY_WEBHOOK_HMAC: HOOK_SECRET, IDLE_WORKERS: '0' } });
  });
  afterAll(async () => stack?.close());

  it('answers the creation probe without a signature', async () => {
    const r = await post(stack, JSON.stringify({ test: 'test' }), { 'content-type': 'application/json' });
    expect(r).toEqual({ status: 200, json: { status: 'ok', probe: true } });
  });

  it('accepts a signed event and says what it did with it', async () => {
    const body = JSON.stringify(event('dialin.stopped', { room: 'not-ours', session_id: randomUUID(), timestamp: 1 }));
    const r = await post(stack, body, signedHeaders(body));
    expect(r).toEqual({ status: 200, json: { status: 'ok', action: 'unknown_room' } });
  });

  it('refuses unsigned, wrongly signed, stale and tampered events with 401', async () => {
    const body = JSON.stringify(event('meeting.ended', { room: 'x' }));
    const unsigned = await post(stack, body, { 'content-type': 'application/json' });
    expect(unsigned.status).toBe(401);
    expect(unsigned.json).toMatchObject({ error: 'invalid_signature', reason: 'missing' });

    const wrong = await post(stack, body, signedHeaders(body, randomBytes(32).toString('base64')));
    expect(wrong.status).toBe(401);
    expect(wrong.json.reason).toBe('mismatch');

    const stale = await post(stack, body, signedHeaders(body, HOOK_SECRET, Math.floor(Date.now() / 1000) - 600));
    expect(stale.status).toBe(401);
    expect(stale.json.reason).toBe('stale');

    // A captured request with its body changed (another event id) keeps its old signature: refused.
    const captured = signedHeaders(body);
    const tampered = body.replace(/"id":"[^"]+"/, `"id":"${randomUUID()}"`);
    expect(tampered).not.toBe(body);
    const t = await post(stack, tampered, captured);
    expect(t.status).toBe(401);
    expect(t.json.reason).toBe('mismatch');
  });

  it('dedupes by event id: a re-sent event and a replayed request get 200 and change nothing', async () => {
    const ev = event('dialin.error', { room: 'nobody', error_msg: 'boom', session_id: randomUUID() });
    const body = JSON.stringify(ev);
    const headers = signedHeaders(body);
    const first = await post(stack, body, headers);
    expect(first.json).toEqual({ status: 'ok', action: 'unknown_room' });
    // Daily's retry: same id, new timestamp and signature, new event_ts.
    const retryBody = JSON.stringify({ ...ev, event_ts: Date.now() / 1000 + 1 });
    const retry = await post(stack, retryBody, signedHeaders(retryBody));
    expect(retry).toEqual({ status: 200, json: { status: 'ok', duplicate: true } });
    // An attacker replaying the exact request inside the signature window.
    const replay = await post(stack, body, headers);
    expect(replay).toEqual({ status: 200, json: { status: 'ok', duplicate: true } });
  });

  it('refuses a signed body that is not a Daily event with 400', async () => {
    const body = JSON.stringify({ type: 'dialin.stopped', payload: {} });
    const r = await post(stack, body, signedHeaders(body));
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('invalid_body');
    const notJson = await post(stack, '{"type":', signedHeaders('{"type":'));
    expect(notJson.status).toBe(400);
  });

  it("the emulator's webhook creation verifies the URL: 200 → ACTIVE, anything else → 400 {error, info}", async () => {
    const ok = await api<{ uuid: string; state: string; failedCount: number; hmac: string }>(stack, 'POST', '/webhooks', {
      url: `${stack.url}/webhooks/daily`,
      hmac: HOOK_SECRET,
      eventTypes: ['dialin.stopped'],
    });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ state: 'ACTIVE', failedCount: 0, hmac: HOOK_SECRET });
    const bad = await api(stack, 'POST', '/webhooks', { url: `${stack.url}/no-such-route`, eventTypes: ['dialin.stopped'] });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: 'invalid-request-error' });
    expect(String(bad.json.info)).toContain('404');
    expect((await api<unknown[]>(stack, 'GET', '/webhooks')).json).toHaveLength(1);
    expect((await api(stack, 'DELETE', `/webhooks/${ok.json.uuid}`)).status).toBe(200);
  });
});

describe('POST /webhooks/daily: basic auth', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      env: { DAILY_WEBHOOK_HMAC: HOOK_SECRET, DAILY_WEBHOOK_BASIC_AUTH: 'daily:s3cret-pass', IDLE_WORKERS: '0' },
    });
  });
  afterAll(async () => stack?.close());

  it('needs the right credentials besides the signature', async () => {
    const body = JSON.stringify(event('meeting.ended', { room: 'x' }));
    const none = await post(stack, body, signedHeaders(body));
    expect(none.status).toBe(401);
    expect(none.json.error).toBe('invalid_credentials');
    const wrong = await post(stack, body, {
      ...signedHeaders(body),
      authorization: `Basic ${Buffer.from('daily:nope').toString('base64')}`,
    });
    expect(wrong.status).toBe(401);
    const right = await post(stack, body, {
      ...signedHeaders(body),
      authorization: `Basic ${Buffer.from('daily:s3cret-pass').toString('base64')}`,
    });
    expect(right).toEqual({ status: 200, json: { status: 'ok', action: 'unknown_room' } });
  });
});

describe('reconciliation from domain events the emulator delivers', () => {
  let stack: Stack;
  let hookId: string;
  beforeAll(async () => {
    stack = await startStack({
      env: {
        DAILY_WEBHOOK_HMAC: HOOK_SECRET,
        DAILY_WEBHOOK_RECONCILE_GRACE_MS: '300',
        WORKER_PING_TIMEOUT_MS: '60000',
        WORKER_CLOSE_TIMEOUT_MS: '500',
      },
      emulator: { domainWebhooks: { retryBaseMs: 20 } },
    });
    const created = await api<{ uuid: string }>(stack, 'POST', '/webhooks', {
      url: `${stack.url}/webhooks/daily`,
      hmac: HOOK_SECRET,
      eventTypes: [
        'dialin.ready',
        'dialin.connected',
        'dialin.stopped',
        'dialin.error',
        'meeting.ended',
        'participant.joined',
        'participant.left',
      ],
      retryType: 'exponential',
    });
    expect(created.status).toBe(200);
    hookId = created.json.uuid;
  });
  afterAll(async () => stack?.close());

  it('a call that ends normally is not touched by the dialin.stopped that follows', async () => {
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('caller_hangup');
    expect(rec.detail ?? '').not.toContain('webhook');
    // The emulator did deliver the events to us, signed, and they were accepted.
    const hook = await until(async () => {
      const h = (await api<{ failedCount: number; lastMomentPushed: string | null; state: string }>(stack, 'GET', `/webhooks/${hookId}`))
        .json;
      return h.lastMomentPushed ? h : undefined;
    });
    expect(hook).toMatchObject({ state: 'ACTIVE', failedCount: 0 });
  });

  it('dialin.stopped for a call whose worker missed it ends the call and frees the slot', async () => {
    const call = stack.emulator.placeCall({ to: NUMBER });
    const live = await waitLive(stack, (r) => r.callId === call.callId && r.timeline.connected !== undefined && r.workerPid !== undefined);
    // The worker stops reacting (a wedged event loop, a lost participant-left): only the webhook can tell us.
    process.kill(live.workerPid!, 'SIGSTOP');
    try {
      call.hangup();
      const rec = await stack.waitEnded(call.callId);
      expect(rec.outcome).toBe('caller_hangup');
      expect(rec.detail).toContain('dialin.stopped webhook');
      expect(stack.rt.dispatcher.liveCalls()).toHaveLength(0);
      // The p-queue slot is released as the call's task returns, right after call-ended.
      await until(() => (stack.rt.dispatcher.stats().active === 0 ? true : undefined), 5_000);
      expect(stack.rt.dispatcher.stats()).toMatchObject({ active: 0, queued: 0, admitting: 0 });
    } finally {
      try {
        process.kill(live.workerPid!, 'SIGKILL');
      } catch {
        /* already reaped */
      }
    }
    // The slot is usable again: the next call completes normally.
    const next = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
    expect((await stack.waitEnded(next.callId)).outcome).toBe('caller_hangup');
  });

  it('dialin.error is recorded on the live call', async () => {
    const call = stack.emulator.placeCall({ to: NUMBER });
    const live = await waitLive(stack, (r) => r.callId === call.callId && r.timeline.connected !== undefined);
    const body = JSON.stringify(
      event('dialin.error', { room: live.roomName, session_id: randomUUID(), error_msg: 'SDP negotiation failed', timestamp: 1 }),
    );
    const r = await post(stack, body, signedHeaders(body));
    expect(r.json).toEqual({ status: 'ok', action: 'recorded' });
    expect(stack.rt.dispatcher.get(live.id)?.dialinError).toBe('SDP negotiation failed');
    call.hangup();
    const rec = await stack.waitEnded(call.callId);
    expect(rec.dialinError).toBe('SDP negotiation failed');
  });

  it('exponential: all 1 + 5 attempts refused → FAILED; reactivate re-verifies and turns it back on', async () => {
    const wrongSecret = randomBytes(32).toString('base64');
    const created = await api<{ uuid: string }>(stack, 'POST', '/webhooks', {
      url: `${stack.url}/webhooks/daily`,
      hmac: wrongSecret,
      eventTypes: ['dialin.ready'],
      retryType: 'exponential',
    });
    // The verification request carries no event, so it gets its 200 whatever the secret: creation succeeds.
    expect(created.status).toBe(200);
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
    await stack.waitEnded(call.callId);
    const failed = await until(async () => {
      const h = (await api<{ state: string; failedCount: number }>(stack, 'GET', `/webhooks/${created.json.uuid}`)).json;
      return h.state === 'FAILED' ? h : undefined;
    });
    expect(failed.failedCount).toBe(6);
    const re = await api<{ state: string; failedCount: number }>(stack, 'POST', `/webhooks/${created.json.uuid}`, {
      url: `${stack.url}/webhooks/daily`,
      hmac: HOOK_SECRET,
    });
    expect(re.status).toBe(200);
    expect(re.json).toMatchObject({ state: 'ACTIVE', failedCount: 0 });
    await api(stack, 'DELETE', `/webhooks/${created.json.uuid}`);
  });

  /** A webhook receiver that answers `statusFor(n)` to the n-th event (verification requests get 200). */
  async function receiver(statusFor: (n: number) => number) {
    const events: Array<{ id: string; type: string; atMs: number; signed: boolean }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const j = JSON.parse(body) as { id?: string; type?: string; test?: string };
        if (j.test !== undefined) return void res.writeHead(200).end();
        events.push({ id: j.id!, type: j.type!, atMs: Date.now(), signed: typeof req.headers['x-webhook-signature'] === 'string' });
        res.writeHead(statusFor(events.length)).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
      events,
      close: () => new Promise((r) => server.close(r)),
    };
  }

  it('exponential: a refused event is re-sent with the same id and growing gaps until it gets its 200', async () => {
    const rx = await receiver((n) => (n <= 2 ? 503 : 200));
    const created = await api<{ uuid: string }>(stack, 'POST', '/webhooks', {
      url: rx.url,
      eventTypes: ['dialin.ready'],
      retryType: 'exponential',
    });
    expect(created.status).toBe(200);
    try {
      const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
      await stack.waitEnded(call.callId);
      await until(() => (rx.events.length >= 3 ? true : undefined));
      const [a, b, c] = rx.events;
      expect(new Set([a!.id, b!.id, c!.id]).size).toBe(1);
      expect(rx.events.every((e) => e.signed && e.type === 'dialin.ready')).toBe(true);
      // retryBaseMs 20: gaps of ≥ 20 then ≥ 40 ms.
      expect(b!.atMs - a!.atMs).toBeGreaterThanOrEqual(15);
      expect(c!.atMs - b!.atMs).toBeGreaterThanOrEqual(35);
      const h = (await api<{ state: string; failedCount: number }>(stack, 'GET', `/webhooks/${created.json.uuid}`)).json;
      expect(h).toMatchObject({ state: 'ACTIVE', failedCount: 0 });
    } finally {
      await api(stack, 'DELETE', `/webhooks/${created.json.uuid}`);
      await rx.close();
    }
  });

  it('circuit-breaker: no retries; 3 consecutive failures → FAILED and nothing more is sent', async () => {
    const rx = await receiver(() => 500);
    const created = await api<{ uuid: string; retryType: string }>(stack, 'POST', '/webhooks', {
      url: rx.url,
      eventTypes: [
        'meeting.started',
        'participant.joined',
        'dialin.ready',
        'dialin.connected',
        'participant.left',
        'dialin.stopped',
        'meeting.ended',
      ],
    });
    expect(created.json.retryType).toBe('circuit-breaker');
    try {
      const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
      await stack.waitEnded(call.callId);
      const h = await until(async () => {
        const w = (await api<{ state: string; failedCount: number }>(stack, 'GET', `/webhooks/${created.json.uuid}`)).json;
        return w.state === 'FAILED' ? w : undefined;
      });
      expect(h.failedCount).toBe(3);
      // Every event was tried at most once; more than 3 happened, only 3 were sent.
      await new Promise((r) => setTimeout(r, 200));
      expect(rx.events).toHaveLength(3);
      expect(new Set(rx.events.map((e) => e.id)).size).toBe(3);
    } finally {
      await api(stack, 'DELETE', `/webhooks/${created.json.uuid}`);
      await rx.close();
    }
  });
});
