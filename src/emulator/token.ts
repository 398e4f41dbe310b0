/**
 * Meeting tokens as Daily makes them: HS256 JWTs signed with the domain's API key, with Daily's
 * abbreviated claims (tokens.ts, TOKEN_CLAIMS): r (room), u (user name), ud (user id), o (owner),
 * d (domain id), iat, exp, nbf, …. Anyone can read them; only the key's holder can sign them.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface TokenClaims {
  r?: string;
  u?: string;
  o?: boolean;
  d: string;
  iat: number;
  exp?: number;
  nbf?: number;
  /** Daily's other abbreviated claims (ud, k, ejt, …). */
  [claim: string]: unknown;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export function signToken(claims: TokenClaims, key: Buffer): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', key).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' };

export function verifyToken(token: string, key: Buffer, nowSec = Date.now() / 1000): TokenCheck {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'malformed' };
  const [head = '', body = '', sig = ''] = parts;
  const expected = createHmac('sha256', key).update(`${head}.${body}`).digest();
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-signature' };
  let claims: TokenClaims;
  try {
    const header: unknown = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
    if (typeof header !== 'object' || header === null || !('alg' in header) || header.alg !== 'HS256')
      return { ok: false, reason: 'malformed' };
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as TokenClaims;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return { ok: false, reason: 'malformed' };
  for (const k of ['exp', 'nbf', 'iat'] as const) {
    if (claims[k] !== undefined && (typeof claims[k] !== 'number' || !Number.isFinite(claims[k])))
      return { ok: false, reason: 'malformed' };
  }
  if (typeof claims.exp === 'number' && claims.exp <= nowSec) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}
