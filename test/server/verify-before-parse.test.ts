/**
 * Verify before parse (issue 11, item 8b): with a large MAX_BODY_BYTES, an unsigned body is not
 * parsed before its signature is checked. A 5 M-deep array with a bad signature is refused at
 * once; a signed large or deep body is parsed after its raw bytes verify; a small body signed over
 * its re-serialised form still verifies (Daily's example signs `JSON.stringify(body)`).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signPinless, signWebhook } from '../../src/daily/signature.js';
import { deferUntilVerified, FALLBACK_MAX_BYTES, jsonDepthWithin } from '../../src/server/signed-request.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const HMAC = randomBytes(32).toString('base64');
const DEPTH = 5_000_000;
const deep = Buffer.from('['.repeat(DEPTH) + ']'.repeat(DEPTH));

describe('depth pre-scan', () => {
  it('counts nesting outside strings only, and bounds what is parsed before verification', () => {
    expect(jsonDepthWithin(Buffer.from('{"a":[[1]],"s":"[[[[[[[[[[\\"[[[["}'), 3)).toBe(true);
    expect(jsonDepthWithin(Buffer.from('[[[[]]]]'), 3)).toBe(false);
    expect(deferUntilVerified(deep)).toBe(true);
    expect(deferUntilVerified(Buffer.from(JSON.stringify({ To: NUMBER, pad: 'x'.repeat(FALLBACK_MAX_BYTES) })))).toBe(true);
    expect(deferUntilVerified(Buffer.from(JSON.stringify({ To: NUMBER, From: '+15557654321', callId: 'c', callDomain: 'd' })))).toBe(false);
  });
});

describe('signed routes verify raw bytes before parsing (real app, MAX_BODY_BYTES=16 MiB)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      env: { MAX_BODY_BYTES: String(16 * 1024 * 1024), DAILY_WEBHOOK_HMAC: HMAC, IDLE_WORKERS: '0', AUTH_FAILURE_LIMIT: '1000' },
    });
  }, 30_000);
  afterAll(async () => {
    await stack?.close();
  });

  const post = async (path: string, body: Buffer | string, headers: Record<string, string>) => {
    const t0 = performance.now();
    const r = await fetch(`${stack.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const json = (await r.json()) as Record<string, unknown>;
    return { status: r.status, json, ms: performance.now() - t0 };
  };
  const ts = () => String(Math.floor(Date.now() / 1000));

  it(
    `a ${DEPTH / 1e6} M-deep array with a bad signature is refused fast, on both routes, without being parsed`,
    { timeout: 30_000 },
    async () => {
      const bad = Buffer.alloc(32, 1).toString('base64');
      for (const [path, prefix] of [
        ['/dialin', 'x-pinless'],
        ['/webhooks/daily', 'x-webhook'],
      ] as const) {
        const heapBefore = process.memoryUsage().heapUsed;
        const r = await post(path, deep, { [`${prefix}-timestamp`]: ts(), [`${prefix}-signature`]: bad });
        const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
        console.log(`${path}: ${DEPTH}-deep array, bad signature → ${r.status} in ${Math.round(r.ms)} ms, heap +${heapMb.toFixed(1)} MB`);
        expect(r.status).toBe(401);
        expect(r.json.reason).toBe('mismatch');
        // Parsing it took 2.8–4.4 s and ~290 MB; sending 10 MB over loopback and one HMAC take a few tens of ms.
        expect(r.ms).toBeLessThan(1_500);
      }
    },
  );

  it('a signed large body is parsed once its raw bytes verify; a signed deep one reaches the schema (400, not 401)', async () => {
    const big = JSON.stringify({
      version: '1.0.0',
      type: 'meeting.ended',
      id: randomUUID(),
      payload: { room: 'none', pad: 'x'.repeat(200_000) },
      event_ts: Date.now() / 1000,
    });
    const t = ts();
    const ok = await post('/webhooks/daily', big, { 'x-webhook-timestamp': t, 'x-webhook-signature': signWebhook(big, HMAC, t) });
    expect(ok.status).toBe(200);
    expect(ok.json.status).toBe('ok');
    const deepSigned = '['.repeat(100) + ']'.repeat(100);
    const t2 = ts();
    const r = await post('/dialin', deepSigned, {
      'x-pinless-timestamp': t2,
      'x-pinless-signature': signPinless(deepSigned, stack.secret, t2),
    });
    expect(r.status).toBe(400);
    // Not JSON at all, but signed: a clear 400 after verification.
    const junk = `${'['.repeat(100)}nope`;
    const r2 = await post('/dialin', junk, { 'x-pinless-timestamp': t2, 'x-pinless-signature': signPinless(junk, stack.secret, t2) });
    expect(r2.status).toBe(400);
    expect(r2.json.error).toBe('invalid_json');
  });

  it('a small body signed over its re-serialised form still verifies', async () => {
    const obj = { version: '1.0.0', type: 'meeting.ended', id: randomUUID(), payload: { room: 'none' }, event_ts: Date.now() / 1000 };
    const pretty = JSON.stringify(obj, null, 2);
    const t = ts();
    const r = await post('/webhooks/daily', pretty, {
      'x-webhook-timestamp': t,
      'x-webhook-signature': signWebhook(JSON.stringify(obj), HMAC, t),
    });
    expect(r.status).toBe(200);
  });
});
