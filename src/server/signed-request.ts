/**
 * The signature check shared by Daily's two webhook routes (`/dialin`: X-Pinless-*,
 * `/webhooks/daily`: X-Webhook-*): same HMAC scheme, same refusal (401 + one log line).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { verifyPinlessSignature } from '../daily/signature.js';

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
    parsedBody: req.body,
    timestamp: typeof ts === 'string' ? ts : undefined,
    signature: typeof sig === 'string' ? sig : undefined,
    secrets: o.secrets,
    windowMs: o.windowMs,
  });
  if (check.ok) return undefined;
  req.log.warn({ reason: check.reason, ip: req.ip }, `${o.what} refused: bad signature`);
  return reply.code(401).send({ error: 'invalid_signature', reason: check.reason, message: `signature check failed: ${check.reason}` });
}
