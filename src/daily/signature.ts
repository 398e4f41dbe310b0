/**
 * Pinless dial-in webhook signatures.
 *
 * Daily signs `timestamp + "." + body` with HMAC-SHA256, keyed by the base64-decoded secret,
 * and sends the base64 digest in `X-Pinless-Signature` and the timestamp in
 * `X-Pinless-Timestamp`. We check the raw request bytes first and `JSON.stringify(parsed)`
 * second (Daily's own example signs the re-serialised body), against every configured secret,
 * in constant time, and refuse timestamps outside the window (seconds or milliseconds).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureFailure = 'missing' | 'bad_timestamp' | 'stale' | 'mismatch';

export type SignatureCheck = { ok: true; secretIndex: number } | { ok: false; reason: SignatureFailure };

export interface VerifyInput {
  rawBody: Buffer | string;
  /** The parsed body, to try the re-serialised form; omit to check raw bytes only. */
  parsedBody?: unknown;
  timestamp: string | undefined;
  signature: string | undefined;
  secrets: readonly string[];
  windowMs: number;
  nowMs?: number;
}

/** Timestamp header → epoch ms. Values below 1e12 are seconds. */
export function parseTimestampMs(value: string): number | undefined {
  if (!/^\d{1,16}(\.\d+)?$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  if (!Number.isFinite(n) || n <= 0) return undefined;
  return n < 1e12 ? n * 1000 : n;
}

function hmac(secret: string, timestamp: string, body: Buffer | string): Buffer {
  const key = Buffer.from(secret, 'base64');
  return createHmac('sha256', key).update(`${timestamp}.`).update(body).digest();
}

/** base64 signature over `timestamp.body`, as Daily computes it. */
export function signPinless(body: string | Buffer, secret: string, timestamp: string): string {
  return hmac(secret, timestamp, body).toString('base64');
}

function decodeSignature(sig: string): Buffer | undefined {
  const s = sig.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return undefined;
  const b = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return b.length === 32 ? b : undefined;
}

export function verifyPinlessSignature(input: VerifyInput): SignatureCheck {
  const { timestamp, signature, secrets } = input;
  if (!timestamp || !signature || secrets.length === 0) return { ok: false, reason: 'missing' };
  const tsMs = parseTimestampMs(timestamp);
  if (tsMs === undefined) return { ok: false, reason: 'bad_timestamp' };
  const now = input.nowMs ?? Date.now();
  if (Math.abs(now - tsMs) > input.windowMs) return { ok: false, reason: 'stale' };
  const given = decodeSignature(signature);
  if (!given) return { ok: false, reason: 'mismatch' };

  const bodies: Array<Buffer | string> = [input.rawBody];
  if (input.parsedBody !== undefined) {
    let reserialised: string | undefined;
    try {
      reserialised = JSON.stringify(input.parsedBody);
    } catch {
      // Nesting too deep to re-serialise (RangeError): only the raw bytes can match.
    }
    const raw = typeof input.rawBody === 'string' ? input.rawBody : input.rawBody.toString('utf8');
    if (reserialised !== undefined && reserialised !== raw) bodies.push(reserialised);
  }
  // Check every secret and body form without returning early, so timing does not reveal which matched.
  let matched = -1;
  secrets.forEach((secret, i) => {
    for (const body of bodies) {
      if (timingSafeEqual(hmac(secret, timestamp, body), given) && matched < 0) matched = i;
    }
  });
  return matched >= 0 ? { ok: true, secretIndex: matched } : { ok: false, reason: 'mismatch' };
}

/**
 * Daily's domain webhooks (`POST /webhooks`) sign the same way, with their own secret, in
 * `X-Webhook-Signature` / `X-Webhook-Timestamp`: one implementation for both.
 */
export const signWebhook = signPinless;
export const verifyWebhookSignature = verifyPinlessSignature;
