/**
 * Outbound calls end to end (issue 26): POST /calls on the real app, the real emulator's dial-out
 * far ends (answer, busy, unreachable, no-answer, voicemail with espeak-ng speech and a sox beep),
 * real forked workers, real audio for voicemail detection. Also: auth, bad input, retries, the
 * status webhook (signed like Daily's pinless webhook) and pacing under Daily's start rate class.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPinlessSignature } from '../../src/daily/signature.js';
import { FIXTURE_BOTS } from '../helpers/ops.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';
import { until } from '../helpers/invariants.js';

const TOKEN = 'outbound-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

interface View {
  id: string;
  status: string;
  result: string | null;
  outcome: string | null;
  detail: string | null;
  attempts: number;
  callIds: string[];
  direction: string;
  history: Array<{ status: string; attempt: number }>;
}

describe('outbound calls (POST /calls)', () => {
  let s: Stack;
  let hooks: Server;
  let hookUrl = '';
  const received: Array<{ body: string; ts: string | undefined; sig: string | undefined }> = [];

  beforeAll(async () => {
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ body, ts: req.headers['x-webhook-timestamp'] as string, sig: req.headers['x-webhook-signature'] as string });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/status`;
    s = await startStack({
      env: {
        BOTS_DIR: FIXTURE_BOTS,
        DEFAULT_BOT: 'outbound',
        CALLS_API_TOKEN: TOKEN,
        MAX_CONCURRENT_BOTS: '6',
        IDLE_WORKERS: '2',
        OUTBOUND_MAX_CONCURRENT: '5',
        OUTBOUND_MAX_ATTEMPTS: '2',
        OUTBOUND_RETRY_MS: '500',
        OUTBOUND_RING_TIMEOUT_MS: '3000',
      },
    });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
    hooks?.close();
  });

  const post = (body: unknown, headers: Record<string, string> = auth) =>
    fetch(`${s.url}/calls`, { method: 'POST', headers, body: JSON.stringify(body) });
  const get = async (id: string): Promise<View> => {
    const r = await fetch(`${s.url}/calls/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    return ((await r.json()) as { call: View }).call;
  };
  const place = async (body: Record<string, unknown>): Promise<View> => {
    const r = await post(body);
    expect(r.status).toBe(202);
    return ((await r.json()) as { call: View }).call;
  };
  const ended = async (id: string, ms = 45_000): Promise<View> => {
    let v: View | undefined;
    await until(async () => (v = await get(id)).status === 'ended', ms, `outbound call ${id} to end`);
    return v!;
  };
  /** The far end's side of the call: what it heard from the bot. */
  const record = (id: string) => s.ended.find((e) => e.id === id) ?? s.rt.dispatcher.get(id);
  const farEnd = (v: View) => {
    const legs = s.emulator.dialOutCalls(record(v.callIds.at(-1)!)?.roomName ?? '');
    return legs.flatMap((l) => l.transcript.filter((t) => t.who === 'bot').map((t) => t.text));
  };

  it('refuses without a token, with a wrong token, and bad input, with clear 4xx answers', async () => {
    const ok = { to: '+15557770001', bot: 'outbound' };
    const none = await post(ok, { 'content-type': 'application/json' });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await post(ok, { ...auth, authorization: 'Bearer wrong-token-wrong-token' })).status).toBe(401);
    const cases: Array<[unknown, RegExp]> = [
      [{ bot: 'outbound' }, /`to` is required/],
      [{ to: '5551234', bot: 'outbound' }, /E\.164/],
      [{ to: '+15557770001', bot: 'nope' }, /unknown bot "nope"/],
      [{ to: '+15557770001', bot: 'outbound', colour: 'red' }, /unknown field "colour"/],
      [{ to: '+15557770001', bot: 'outbound', notBefore: 'tomorrow' }, /notBefore/],
      [{ to: '+15557770001', bot: 'outbound', metadata: 'x' }, /metadata/],
    ];
    // The token is checked before the body is read.
    const junk = await fetch(`${s.url}/calls`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"to":' });
    expect(junk.status).toBe(401);
    for (const [body, msg] of cases) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(((await r.json()) as { message: string }).message).toMatch(msg);
    }
  });

  it('answered: the bot sees direction outbound and the metadata; status queued → dialing → answered → ended; the webhook is signed', async () => {
    // A person: a short "hello?" out loud (espeak-ng audio), then waits for the bot.
    s.emulator.setDialOutTarget('+15557770001', {
      answer: 'answer',
      answerAfterMs: 200,
      script: [{ speak: 'Hello?' }, { waitFor: 'say', match: 'Hello' }],
    });
    const v0 = await place({ to: '+15557770001', bot: 'outbound', metadata: { name: 'Ada' }, statusUrl: hookUrl });
    expect(v0.status).toBe('queued');
    const v = await ended(v0.id);
    expect(v.result).toBe('answered');
    expect(v.outcome).toBe('completed');
    expect(v.history.map((h) => h.status)).toEqual(['queued', 'dialing', 'answered', 'ended']);
    expect(farEnd(v)).toEqual(['Hello Ada, this is a outbound call.']);
    expect(record(v.callIds[0]!)?.botEvents.find((e) => e.kind === 'voicemail')?.value).toMatch(/^person: short-greeting/);
    await until(() => received.filter((r) => r.body.includes(v.id)).length >= 4, 5_000, 'status webhooks');
    const mine = received.filter((r) => r.body.includes(v.id));
    expect(mine.map((r) => (JSON.parse(r.body) as { status: string }).status)).toEqual(['queued', 'dialing', 'answered', 'ended']);
    for (const r of mine) {
      const check = verifyPinlessSignature({
        rawBody: r.body,
        timestamp: r.ts,
        signature: r.sig,
        secrets: [Buffer.from(TOKEN).toString('base64')],
        windowMs: 60_000,
      });
      expect(check.ok).toBe(true);
    }
    // The call records list it, with its direction.
    await until(
      async () => {
        const list = (await (await fetch(`${s.url}/calls`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
          calls: Array<{ id: string; direction: string }>;
        };
        return list.calls.some((c) => c.id === v.callIds[0] && c.direction === 'outbound');
      },
      10_000,
      'the outbound record in GET /calls',
    );
  }, 60_000);

  it('busy and no-answer are tried again (OUTBOUND_MAX_ATTEMPTS), then end as such; unreachable fails at once', async () => {
    s.emulator.setDialOutTarget('+15557770002', { answer: 'busy' });
    s.emulator.setDialOutTarget('+15557770003', { answer: 'no-answer', ringMs: 60_000 });
    s.emulator.setDialOutTarget('+15557770004', { answer: 'unreachable' });
    const [busy, noAnswer, unreachable] = await Promise.all(
      ['+15557770002', '+15557770003', '+15557770004'].map((to) => place({ to, bot: 'outbound' })),
    );
    const b = await ended(busy!.id);
    expect([b.result, b.outcome, b.attempts]).toEqual(['busy', 'dialout_failed', 2]);
    expect(b.detail).toMatch(/^busy: /);
    const n = await ended(noAnswer!.id);
    expect([n.result, n.outcome, n.attempts]).toEqual(['no-answer', 'dialout_failed', 2]);
    const u = await ended(unreachable!.id);
    expect([u.result, u.outcome, u.attempts]).toEqual(['failed', 'dialout_failed', 1]);
    expect(b.history.map((h) => h.status)).toEqual(['queued', 'dialing', 'busy', 'dialing', 'busy', 'ended']);
  }, 90_000);

  it('voicemail: detected from the greeting and the beep; the bot leaves its message after the beep', async () => {
    s.emulator.setDialOutTarget('+15557770005', { answer: 'voicemail', answerAfterMs: 100, recordMs: 8_000 });
    const v = await ended((await place({ to: '+15557770005', bot: 'outbound', metadata: { name: 'Grace' } })).id, 60_000);
    expect(v.result).toBe('voicemail');
    expect(v.outcome).toBe('completed');
    expect(v.detail).toMatch(/voicemail \(beep\): message left/);
    expect(farEnd(v)).toEqual(['Message for Grace: your order has shipped (beep).']);
    const rec = record(v.callIds[0]!);
    expect(rec?.botEvents.some((e) => e.kind === 'voicemail' && /^machine: beep 1000 Hz/.test(e.value))).toBe(true);
    // The message started after the beep: the far end's transcript has the beep line before the bot's words.
    const leg = s.emulator.dialOutCalls(rec!.roomName)[0]!;
    const beepAt = leg.transcript.findIndex((t) => /beep/.test(t.text));
    const saidAt = leg.transcript.findIndex((t) => t.who === 'bot');
    expect(beepAt).toBeGreaterThanOrEqual(0);
    expect(saidAt).toBeGreaterThan(beepAt);
  }, 90_000);

  it('an Idempotency-Key places one call however often the request is repeated', async () => {
    s.emulator.setDialOutTarget('+15557770006', { answer: 'answer', script: [{ waitFor: 'say', match: 'Hello' }] });
    const headers = { ...auth, 'idempotency-key': 'order-77' };
    const r1 = await post({ to: '+15557770006', bot: 'outbound' }, headers);
    const r2 = await post({ to: '+15557770006', bot: 'outbound' }, headers);
    expect([r1.status, r2.status]).toEqual([202, 200]);
    const [a, b] = [(await r1.json()) as { call: View }, (await r2.json()) as { call: View }];
    expect(b.call.id).toBe(a.call.id);
    const v = await ended(a.call.id);
    expect(v.attempts).toBe(1);
  }, 60_000);
});

describe('outbound calls without CALLS_API_TOKEN', () => {
  it('POST /calls does not exist (404, like any unknown route); GET /calls still lists records', async () => {
    const s = await startStack({ env: { BOTS_DIR: FIXTURE_BOTS, DEFAULT_BOT: 'outbound' } });
    try {
      const r = await fetch(`${s.url}/calls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: '+15557770001', bot: 'outbound' }),
      });
      expect(r.status).toBe(404);
      expect((await fetch(`${s.url}/calls`)).status).toBe(200);
    } finally {
      await s.close();
    }
  }, 60_000);
});

describe('outbound calls across a restart', () => {
  it('a queued call and its idempotency key survive a restart; it is placed once, by the new process', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pb-outbound-'));
    const env = { BOTS_DIR: FIXTURE_BOTS, DEFAULT_BOT: 'outbound', CALLS_API_TOKEN: TOKEN, CALL_RECORDS_PATH: path.join(dir, 'calls.db') };
    const headers = { ...auth, 'idempotency-key': 'survives-restart' };
    const body = JSON.stringify({ to: '+15557770010', bot: 'outbound', notBefore: Date.now() + 6_000, metadata: { name: 'Lin' } });
    const s1 = await startStack({ env });
    let id = '';
    try {
      const r = await fetch(`${s1.url}/calls`, { method: 'POST', headers, body });
      expect(r.status).toBe(202);
      id = ((await r.json()) as { call: View }).call.id;
    } finally {
      await s1.close();
    }
    const s2 = await startStack({ env });
    try {
      s2.emulator.setDialOutTarget('+15557770010', { answer: 'answer', script: [{ waitFor: 'say', match: 'Hello' }] });
      const again = await fetch(`${s2.url}/calls`, { method: 'POST', headers, body });
      expect(again.status).toBe(200);
      expect(((await again.json()) as { call: View }).call.id).toBe(id);
      let v: View | undefined;
      await until(
        async () => {
          const r = await fetch(`${s2.url}/calls/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
          v = ((await r.json()) as { call: View }).call;
          return v.status === 'ended';
        },
        45_000,
        'the restored call to end',
      );
      expect([v!.result, v!.attempts, v!.outcome]).toEqual(['answered', 1, 'completed']);
    } finally {
      await s2.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('outbound calls wait for inbound callers', () => {
  it('with one bot slot: an inbound caller who arrives while an outbound call waits is served first', async () => {
    const s = await startStack({
      env: {
        BOTS_DIR: FIXTURE_BOTS,
        DEFAULT_BOT: 'outbound',
        CALLS_API_TOKEN: TOKEN,
        MAX_CONCURRENT_BOTS: '1',
        QUEUE_TIMEOUT_MS: '30000',
        VOICEMAIL_DETECT: 'false',
      },
    });
    try {
      s.emulator.setDialOutTarget('+15557770020', { answer: 'answer', script: [{ waitFor: 'say', match: 'Hello' }] });
      const caller = (ms: number) =>
        s.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say', timeoutMs: 30_000 }, { wait: ms }, { hangup: true }] });
      const a = caller(2_000);
      await until(() => s.rt.dispatcher.stats().active === 1, 20_000, 'the first inbound call to run');
      const r = await fetch(`${s.url}/calls`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ to: '+15557770020', bot: 'outbound' }),
      });
      const id = ((await r.json()) as { call: View }).call.id;
      const b = caller(500);
      await until(() => s.ended.length >= 3, 60_000, 'three calls to end');
      // One slot: calls end in the order they ran. Both callers before the outbound call.
      expect(s.ended.map((e) => e.callId)).toEqual([a.callId, b.callId, `outbound-${id}-1`]);
      const inbound = s.ended[0]!;
      expect(inbound.botEvents.some((e) => e.kind === 'dialout')).toBe(false);
      expect(a.transcript.some((l) => l.who === 'bot' && /this is a inbound call/.test(l.text))).toBe(true);
    } finally {
      await s.close();
    }
  }, 90_000);
});
