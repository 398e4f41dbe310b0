import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseTimestampMs, signPinless, verifyPinlessSignature } from '../../src/daily/signature.js';

const secret = Buffer.from('patchbay-test-secret-0123456789ab').toString('base64');
const other = Buffer.from('another-secret-for-rotation-tests').toString('base64');
const now = 1_760_000_000_000;
const tsSec = String(Math.floor(now / 1000));

/** Independent reference: the formula from Daily's docs, computed here without our code. */
function reference(body: string, ts: string, key: string): string {
  return createHmac('sha256', Buffer.from(key, 'base64')).update(`${ts}.${body}`).digest('base64');
}

const compact = '{"To":"+15550001000","From":"+15551234567","callId":"c-1","callDomain":"d-1"}';
const spaced = '{ "To": "+15550001000", "From": "+15551234567", "callId": "c-1", "callDomain": "d-1" }';

describe('pinless signatures', () => {
  it('signs exactly as the documented formula', () => {
    expect(signPinless(compact, secret, tsSec)).toBe(reference(compact, tsSec, secret));
    // A known vector, fixed so a change in the formula cannot pass unnoticed.
    expect(signPinless('{"a":1}', Buffer.from('k').toString('base64'), '1700000000')).toBe(
      createHmac('sha256', 'k').update('1700000000.{"a":1}').digest('base64'),
    );
  });

  it('accepts the raw compact body (seconds timestamp)', () => {
    const r = verifyPinlessSignature({
      rawBody: compact,
      parsedBody: JSON.parse(compact),
      timestamp: tsSec,
      signature: reference(compact, tsSec, secret),
      secrets: [secret],
      windowMs: 300_000,
      nowMs: now,
    });
    expect(r).toEqual({ ok: true, secretIndex: 0 });
  });

  it('accepts a spaced raw body signed as sent', () => {
    const r = verifyPinlessSignature({
      rawBody: spaced,
      parsedBody: JSON.parse(spaced),
      timestamp: tsSec,
      signature: reference(spaced, tsSec, secret),
      secrets: [secret],
      windowMs: 300_000,
      nowMs: now,
    });
    expect(r.ok).toBe(true);
  });

  it('accepts a spaced body whose signature covers JSON.stringify(parsed) (Daily example style)', () => {
    const sig = reference(JSON.stringify(JSON.parse(spaced)), tsSec, secret);
    const r = verifyPinlessSignature({
      rawBody: spaced,
      parsedBody: JSON.parse(spaced),
      timestamp: tsSec,
      signature: sig,
      secrets: [secret],
      windowMs: 300_000,
      nowMs: now,
    });
    expect(r.ok).toBe(true);
    // Without the parsed body, only the raw bytes count.
    expect(
      verifyPinlessSignature({ rawBody: spaced, timestamp: tsSec, signature: sig, secrets: [secret], windowMs: 300_000, nowMs: now }).ok,
    ).toBe(false);
  });

  it('accepts millisecond timestamps', () => {
    const ts = String(now);
    const r = verifyPinlessSignature({
      rawBody: compact,
      timestamp: ts,
      signature: reference(compact, ts, secret),
      secrets: [secret],
      windowMs: 300_000,
      nowMs: now + 1000,
    });
    expect(r.ok).toBe(true);
    expect(parseTimestampMs('1700000000')).toBe(1_700_000_000_000);
    expect(parseTimestampMs('1700000000000')).toBe(1_700_000_000_000);
    expect(parseTimestampMs('abc')).toBeUndefined();
    expect(parseTimestampMs('-5')).toBeUndefined();
  });

  it('honours every configured secret (rotation)', () => {
    const sig = reference(compact, tsSec, other);
    const r = verifyPinlessSignature({
      rawBody: compact,
      timestamp: tsSec,
      signature: sig,
      secrets: [secret, other],
      windowMs: 300_000,
      nowMs: now,
    });
    expect(r).toEqual({ ok: true, secretIndex: 1 });
  });

  it('rejects tampering, stale or future timestamps, and missing parts', () => {
    const sig = reference(compact, tsSec, secret);
    const base = { rawBody: compact, timestamp: tsSec, signature: sig, secrets: [secret], windowMs: 300_000, nowMs: now };
    expect(verifyPinlessSignature({ ...base, rawBody: compact.replace('c-1', 'c-2') })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyPinlessSignature({ ...base, secrets: [other] })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyPinlessSignature({ ...base, nowMs: now + 301_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyPinlessSignature({ ...base, nowMs: now - 301_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyPinlessSignature({ ...base, timestamp: String(Number(tsSec) + 1) })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyPinlessSignature({ ...base, signature: undefined })).toEqual({ ok: false, reason: 'missing' });
    expect(verifyPinlessSignature({ ...base, timestamp: undefined })).toEqual({ ok: false, reason: 'missing' });
    expect(verifyPinlessSignature({ ...base, timestamp: 'yesterday' })).toEqual({ ok: false, reason: 'bad_timestamp' });
    expect(verifyPinlessSignature({ ...base, signature: 'not base64 !!' })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyPinlessSignature({ ...base, signature: Buffer.alloc(16).toString('base64') })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyPinlessSignature({ ...base, secrets: [] })).toEqual({ ok: false, reason: 'missing' });
  });
});
