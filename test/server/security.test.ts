/**
 * Security: property-based tests (fast-check) of webhook verification, failed-attempt limiting per
 * source on a real app, body limits, security headers where pages are served, and phone numbers /
 * secrets in logs.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { signPinless, verifyPinlessSignature } from '../../src/daily/signature.js';
import { createLogger, maskLogFields, maskNumber } from '../../src/core/logger.js';
import { expectNoLeaks } from '../helpers/invariants.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const WINDOW_MS = 300_000;
const NOW = 1_790_000_000_000;

/** 32-byte secrets: HMAC pads shorter keys with zeros, so "k" and "k\0" would be the same key. */
const secretArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64'));
const bodyArb = fc.oneof(
  fc.string({ maxLength: 500 }),
  fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
);
const tsArb = fc
  .integer({ min: -WINDOW_MS, max: WINDOW_MS })
  .chain((skew) => fc.constantFrom(String(Math.floor((NOW + skew) / 1000)), String(NOW + skew)));

const verify = (body: string | Buffer, timestamp: string, signature: string, secrets: string[], nowMs = NOW) =>
  verifyPinlessSignature({ rawBody: body, timestamp, signature, secrets, windowMs: WINDOW_MS, nowMs });

describe('webhook signature verification (properties)', () => {
  const runs = { numRuns: 300 };

  it('accepts exactly what was signed: any body, any secret, any timestamp in the window (seconds or ms)', () => {
    fc.assert(
      fc.property(bodyArb, secretArb, tsArb, (body, secret, ts) => {
        expect(verify(body, ts, signPinless(body, secret, ts), [secret])).toEqual({ ok: true, secretIndex: 0 });
      }),
      runs,
    );
  });

  it('rejects any change to the body', () => {
    fc.assert(
      fc.property(bodyArb, secretArb, tsArb, fc.string({ minLength: 1, maxLength: 20 }), fc.nat(), (body, secret, ts, insert, at) => {
        const sig = signPinless(body, secret, ts);
        const i = body.length === 0 ? 0 : at % (body.length + 1);
        const changed = body.slice(0, i) + insert + body.slice(i);
        fc.pre(changed !== body);
        expect(verify(changed, ts, sig, [secret])).toEqual({ ok: false, reason: 'mismatch' });
        if (body.length > 0) {
          const flipped = Buffer.from(body, 'utf8');
          flipped[at % flipped.length]! ^= 1 << (at % 8);
          expect(verify(flipped, ts, sig, [secret]).ok).toBe(false);
        }
      }),
      runs,
    );
  });

  it('rejects any other timestamp, even one inside the window', () => {
    fc.assert(
      fc.property(bodyArb, secretArb, tsArb, tsArb, (body, secret, ts, other) => {
        fc.pre(other !== ts);
        expect(verify(body, other, signPinless(body, secret, ts), [secret]).ok).toBe(false);
      }),
      runs,
    );
  });

  it('rejects any other signature (random, truncated, one bit flipped)', () => {
    fc.assert(
      fc.property(
        bodyArb,
        secretArb,
        tsArb,
        fc.uint8Array({ minLength: 0, maxLength: 48 }),
        fc.nat(255),
        (body, secret, ts, random, bit) => {
          const good = Buffer.from(signPinless(body, secret, ts), 'base64');
          const flipped = Buffer.from(good);
          flipped[bit % 32]! ^= 1 << (bit % 8);
          for (const sig of [
            Buffer.from(random).toString('base64'),
            good.subarray(0, 31).toString('base64'),
            flipped.toString('base64'),
            '',
            ' ',
            '====',
          ]) {
            fc.pre(sig !== good.toString('base64'));
            expect(verify(body, ts, sig, [secret]).ok).toBe(false);
          }
        },
      ),
      runs,
    );
  });

  it('rejects a signature made with any other secret', () => {
    fc.assert(
      fc.property(bodyArb, secretArb, secretArb, tsArb, (body, secret, other, ts) => {
        fc.pre(other !== secret);
        expect(verify(body, ts, signPinless(body, other, ts), [secret])).toEqual({ ok: false, reason: 'mismatch' });
      }),
      runs,
    );
  });

  it('rejects a replay outside the window, however well signed (past and future)', () => {
    fc.assert(
      fc.property(
        bodyArb,
        secretArb,
        fc.integer({ min: WINDOW_MS + 1, max: 10 * 365 * 86_400_000 }),
        fc.boolean(),
        fc.boolean(),
        (body, secret, age, future, inSeconds) => {
          const tsMs = NOW + (future ? age : -age);
          const ts = inSeconds ? String(Math.floor(tsMs / 1000) + (future ? 1 : 0)) : String(tsMs);
          // (seconds round down: +1 keeps a future timestamp outside the window)
          fc.pre(Math.abs(Number(ts) * (inSeconds ? 1000 : 1) - NOW) > WINDOW_MS);
          expect(verify(body, ts, signPinless(body, secret, ts), [secret])).toEqual({ ok: false, reason: 'stale' });
        },
      ),
      runs,
    );
  });

  it('honours every configured secret (rotation), and names the one that matched', () => {
    fc.assert(
      fc.property(bodyArb, fc.uniqueArray(secretArb, { minLength: 1, maxLength: 5 }), fc.nat(), tsArb, (body, secrets, pickIndex, ts) => {
        const i = pickIndex % secrets.length;
        expect(verify(body, ts, signPinless(body, secrets[i]!, ts), secrets)).toEqual({ ok: true, secretIndex: i });
        expect(
          verify(
            body,
            ts,
            signPinless(body, secrets[i]!, ts),
            secrets.filter((_, j) => j !== i),
          ).ok,
        ).toBe(false);
      }),
      runs,
    );
  });

  it('refuses missing or malformed headers and an empty secret list', () => {
    fc.assert(
      fc.property(bodyArb, secretArb, fc.string({ maxLength: 40 }), (body, secret, junk) => {
        fc.pre(!/^\s*\d{1,16}(\.\d+)?\s*$/.test(junk));
        const ts = String(Math.floor(NOW / 1000));
        const sig = signPinless(body, secret, ts);
        expect(verify(body, junk, sig, [secret]).ok).toBe(false);
        expect(verify(body, ts, sig, [])).toEqual({ ok: false, reason: 'missing' });
        expect(
          verifyPinlessSignature({
            rawBody: body,
            timestamp: undefined,
            signature: sig,
            secrets: [secret],
            windowMs: WINDOW_MS,
            nowMs: NOW,
          }).ok,
        ).toBe(false);
        expect(
          verifyPinlessSignature({ rawBody: body, timestamp: ts, signature: undefined, secrets: [secret], windowMs: WINDOW_MS, nowMs: NOW })
            .ok,
        ).toBe(false);
      }),
      runs,
    );
  });

  it('compares in constant time: timingSafeEqual on fixed-length digests, every secret and form checked, no early return', () => {
    const src = readFileSync(new URL('../../src/daily/signature.ts', import.meta.url), 'utf8');
    const fn = src.slice(src.indexOf('export function verifyPinlessSignature'));
    expect(fn).toMatch(/timingSafeEqual\(hmac\(secret, timestamp, body\), given\)/);
    // The digest comparison loop has no return / break inside it.
    const loop = fn.slice(fn.indexOf('secrets.forEach'), fn.indexOf('return matched'));
    expect(loop).not.toMatch(/\breturn\b|\bbreak\b/);
    // Strings are never compared with ===/!== against the signature.
    expect(fn).not.toMatch(/signature\s*[!=]==|[!=]==\s*signature|given\s*[!=]==/);
    // decodeSignature only lets 32-byte digests through (timingSafeEqual needs equal lengths).
    expect(src).toMatch(/b\.length === 32 \? b : undefined/);
  });
});

describe('phone numbers and secrets in logs', () => {
  function capture(maskNumbers?: boolean) {
    const out: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk.toString('utf8'));
        cb();
      },
    });
    const logger = createLogger({ level: 'info', ...(maskNumbers === undefined ? {} : { maskNumbers }), destination });
    return { logger, text: () => out.join('') };
  }

  it('masks all but the last 4 digits in number fields, nested objects, arrays and messages; keeps other data', () => {
    const { logger, text } = capture();
    logger.info(
      {
        from: '+15551234567',
        to: 'sip:+15557654321@sip.daily.co',
        to_list: 1,
        phoneNumber: ['+15550001000'],
        call: { From: '+445551112222' },
        detail: 'transferred to +15559998888',
        callId: 'c-1234567890',
        atMs: 17_900_000_000_00,
      },
      'calling +15553334444 now',
    );
    logger.child({ callId: 'x' }).warn({ caller: '+15556667777' }, 'child');
    const t = text();
    for (const n of ['15551234567', '15557654321', '15550001000', '445551112222', '15559998888', '15553334444', '15556667777'])
      expect(t).not.toContain(n);
    expect(t).toContain('"from":"********4567"');
    expect(t).toContain('"to":"sip:********4321@sip.daily.co"');
    expect(t).toContain('calling ********4444 now');
    expect(t).toContain('"callId":"c-1234567890"');
    expect(t).toContain('"atMs":1790000000000');
  });

  it('masking is idempotent and a property: no run of 7+ digits of a number survives, the last 4 always do', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\+[1-9]\d{6,14}$/), fc.constantFrom('from', 'to', 'phoneNumber', 'detail', 'message'), (n, key) => {
        const once = maskLogFields({ [key]: n });
        expect(maskLogFields(once)).toEqual(once);
        const v = String(once[key]);
        expect(v.endsWith(n.slice(-4))).toBe(true);
        expect(v).not.toMatch(/\d{5,}/);
      }),
      { numRuns: 300 },
    );
    expect(maskNumber('1234')).toBe('1234');
  });

  it('LOG_MASK_NUMBERS=false turns it off (development); the default is on', () => {
    expect(loadConfig({}).logMaskNumbers).toBe(true);
    expect(loadConfig({ LOG_MASK_NUMBERS: 'false' }).logMaskNumbers).toBe(false);
    const { logger, text } = capture(false);
    logger.info({ from: '+15551234567' }, 'x');
    expect(text()).toContain('+15551234567');
  });

  it('secrets and signatures are redacted wherever they are logged', () => {
    const { logger, text } = capture();
    const secret = randomBytes(32).toString('base64');
    logger.info(
      {
        hmac: secret,
        apiKey: secret,
        token: secret,
        daily: { apiKey: secret },
        req: { headers: { authorization: `Bearer ${secret}`, 'x-pinless-signature': secret } },
      },
      'x',
    );
    expect(text()).not.toContain(secret);
  });
});

describe('failed signature attempts are limited per source (real app)', () => {
  let stack: Stack;
  const LIMIT = 5;
  beforeAll(async () => {
    stack = await startStack({
      env: { AUTH_FAILURE_LIMIT: String(LIMIT), AUTH_FAILURE_WINDOW_MS: '4000' },
      emulator: { holdTimeoutMs: 5_000 },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const forged = (ip: string, body = JSON.stringify({ To: NUMBER, From: '+15551112222', callId: `f-${Math.random()}`, callDomain: 'd' })) =>
    fetch(`${stack.url}/dialin`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-forwarded-for': ip,
        'x-pinless-timestamp': String(Math.floor(Date.now() / 1000)),
        'x-pinless-signature': Buffer.alloc(32, 7).toString('base64'),
      },
      body,
    });

  it(`${LIMIT} failures answer 401; the next ones 429 with Retry-After; other sources and signed requests from the same source are unaffected; the window resets`, async () => {
    const ip = '203.0.113.7';
    const t0 = Date.now();
    for (let i = 0; i < LIMIT; i++) expect((await forged(ip)).status).toBe(401);
    const limited = await forged(ip);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited.json()).toMatchObject({ error: 'too_many_failures' });
    // /webhooks/daily shares the per-source count.
    const wh = await fetch(`${stack.url}/webhooks/daily`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
      body: '{"type":"meeting.ended","id":"e1","payload":{}}',
    });
    expect(wh.status).toBe(429);
    // Another source is still answered 401.
    expect((await forged('198.51.100.9')).status).toBe(401);

    // A genuine, signed call from the limited address (a load balancer carries every call) gets through.
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
    // The emulator's webhook comes from 127.0.0.1; replay its exact signed request from the limited source.
    const body = JSON.stringify({ To: NUMBER, From: call.from, callId: call.callId, callDomain: call.callDomain, sipHeaders: {} });
    const ts = String(Math.floor(Date.now() / 1000));
    const signedRes = await fetch(`${stack.url}/dialin`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-forwarded-for': ip,
        'x-pinless-timestamp': ts,
        'x-pinless-signature': signPinless(body, stack.secret, ts),
      },
      body,
    });
    expect(signedRes.status).toBe(200);
    expect(((await signedRes.json()) as { status: string }).status).toBe('accepted');
    expect((await call.ended).reason).toBe('caller_hangup');
    await stack.waitEnded(call.callId);
    // Unsigned probes are never limited either (Daily's configuration checks).
    expect(
      (
        await fetch(`${stack.url}/dialin`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
          body: JSON.stringify({ To: NUMBER }),
        })
      ).status,
    ).toBe(200);
    // Limited until the window (counted from the first failure) passes, then 401 again.
    let status = 429;
    while (status === 429 && Date.now() - t0 < 15_000) {
      status = (await forged(ip)).status;
      if (status === 429) await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe(401);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3_900);
    await expectNoLeaks({ stack, placed: [call] });
  });

  it('no forged request ever starts a bot: 300 forged requests from 30 sources, no room, no worker used', async () => {
    const before = stack.rt.pool.stats();
    const roomsBefore = stack.emulator.requestLog.filter((r) => r.method === 'POST' && r.path === '/rooms').length;
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => forged(`192.0.2.${i % 30}`).then((r) => r.status)));
    expect(new Set(answers)).toEqual(new Set([401, 429]));
    expect(stack.emulator.requestLog.filter((r) => r.method === 'POST' && r.path === '/rooms').length).toBe(roomsBefore);
    const after = stack.rt.pool.stats();
    expect(after.warmStarts + after.coldStarts).toBe(before.warmStarts + before.coldStarts);
  });
});

describe('TRUST_PROXY: who the source is', () => {
  it('parses the private-ranges default, true / false / hop count / CIDR list, refuses junk', () => {
    // Default: X-Forwarded-For is believed only from private-network peers (proxies), never from a public client.
    expect(loadConfig({}).trustProxy).toBe('loopback,linklocal,uniquelocal');
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.1.2.3' }).trustProxy).toBe('loopback, 10.1.2.3');
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy).toBe('10.0.0.0/8, 127.0.0.1');
    expect(() => loadConfig({ TRUST_PROXY: 'yes please' })).toThrow(/TRUST_PROXY/);
  });

  it('with TRUST_PROXY=false a forger cannot dodge the limit by rotating X-Forwarded-For', async () => {
    const stack = await startStack({ env: { TRUST_PROXY: 'false', AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW_MS: '60000' } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await fetch(`${stack.url}/dialin`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-forwarded-for': `198.18.0.${i}`,
            'x-pinless-timestamp': '1',
            'x-pinless-signature': 'AAAA',
          },
          body: JSON.stringify({ To: NUMBER, From: '+15551112222', callId: `r-${i}`, callDomain: 'd' }),
        });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
    } finally {
      await stack.close();
    }
  });
});

describe('body limits and security headers (real app)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { MAX_BODY_BYTES: '4096' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('refuses bodies over MAX_BODY_BYTES with 413 on both webhook routes, with or without Content-Length', async () => {
    const big = JSON.stringify({ To: NUMBER, pad: 'x'.repeat(5_000) });
    for (const path of ['/dialin', '/webhooks/daily']) {
      expect(
        (await fetch(`${stack.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big })).status,
      ).toBe(413);
      // A stream body: sent chunked, without Content-Length.
      const stream = new ReadableStream({
        start(c) {
          for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode(big.slice(i * 600, (i + 1) * 600)));
          c.close();
        },
      });
      const res = await fetch(`${stack.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      });
      expect(res.status).toBe(413);
    }
    expect(stack.emulator.snapshot().rooms).toHaveLength(0);
  });

  it('the dashboard page is served with security headers (CSP, nosniff, frame denial, no referrer)', async () => {
    const res = await fetch(`${stack.url}/dashboard`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'self'|default-src 'none'/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('JSON APIs answer with a JSON content type (never sniffed as HTML)', async () => {
    for (const path of ['/status', '/health/live', '/calls']) {
      const res = await fetch(`${stack.url}${path}`);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    }
    const notFound = await fetch(`${stack.url}/<script>alert(1)</script>`);
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get('content-type')).toMatch(/^application\/json/);
  });
});
