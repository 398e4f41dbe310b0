/**
 * The signature check shared by Daily's two webhook routes (`/dialin`: X-Pinless-*,
 * `/webhooks/daily`: X-Webhook-*): same HMAC scheme, same refusal (401 + one log line).
 *
 * Verify before parse: on a signed route, a body larger than FALLBACK_MAX_BYTES or nested deeper
 * than FALLBACK_MAX_DEPTH is not parsed by the content-type parser (`req.bodyDeferred`); its raw
 * bytes are verified here first and it is parsed only once they match. Only bodies within those
 * bounds are parsed up front, which also lets their re-serialised form be checked (Daily's own
 * example signs `JSON.stringify(body)`). Real webhook bodies are a few hundred bytes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import sjson from 'secure-json-parse';
import { verifyPinlessSignature } from '../daily/signature.js';
import { errorMessage } from '../core/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** True when the body was kept unparsed until its signature is checked (see above). */
    bodyDeferred: boolean;
  }
}

/** Bodies parsed before their signature is checked, and for the re-serialised fallback: at most this size… */
export const FALLBACK_MAX_BYTES = 64 * 1024;
/** … and this nesting depth. */
export const FALLBACK_MAX_DEPTH = 32;

/** True when `buf` nests arrays / objects at most `maxDepth` deep (strings skipped); one pass, no parse. */
export function jsonDepthWithin(buf: Buffer, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return false;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return true;
}

/** Whether a signed route's body must wait for its signature before it is parsed. */
export function deferUntilVerified(buf: Buffer): boolean {
  return buf.length > FALLBACK_MAX_BYTES || !jsonDepthWithin(buf, FALLBACK_MAX_DEPTH);
}

/** JSON with prototype-poisoning keys refused; a 400 `invalid_json` error otherwise. */
export function parseJsonBody(buf: Buffer): unknown {
  try {
    return sjson.parse(buf, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (err) {
    throw Object.assign(new Error(`body is not valid JSON: ${errorMessage(err)}`), { statusCode: 400, code: 'invalid_json' });
  }
}

export interface SignedRequestOptions {
  /** For the log line, e.g. 'dialin webhook'. */
  what: string;
  timestampHeader: string;
  signatureHeader: string;
  secrets: readonly string[];
  windowMs: number;
}

/** Verifies the request; on failure sends the 401 and returns the reply (a preValidation hook returns it). */
export function refuseUnsigned(req: FastifyRequest, reply: FastifyReply, o: SignedRequestOptions): FastifyReply | undefined {
  const ts = req.headers[o.timestampHeader];
  const sig = req.headers[o.signatureHeader];
  const check = verifyPinlessSignature({
    rawBody: req.rawBody ?? Buffer.alloc(0),
    // A deferred body has not been parsed: only its raw bytes can match.
    ...(req.bodyDeferred ? {} : { parsedBody: req.body }),
    timestamp: typeof ts === 'string' ? ts : undefined,
    signature: typeof sig === 'string' ? sig : undefined,
    secrets: o.secrets,
    windowMs: o.windowMs,
  });
  if (check.ok) {
    if (!req.bodyDeferred) return undefined;
    // Authentic: now it may be parsed (and validated by the route's schema after this hook).
    req.bodyDeferred = false;
    try {
      req.body = parseJsonBody(req.rawBody!);
      return undefined;
    } catch (err) {
      req.log.warn({ ip: req.ip, bytes: req.rawBody?.length }, `${o.what} refused: signed body is not valid JSON`);
      return reply.code(400).send({ error: 'invalid_json', message: errorMessage(err) });
    }
  }
  // One line per source and interval, with a count (plugins/refusal-log.ts).
  req.server.refusals.note(req.ip, `${o.what} refused: bad signature`, { reason: check.reason });
  return reply.code(401).send({ error: 'invalid_signature', reason: check.reason, message: `signature check failed: ${check.reason}` });
}
