/**
 * Outbound calls (docs/outbound.md):
 *
 *   POST /calls  { to, bot, from?, metadata?, notBefore?, statusUrl? }
 *     Authorization: Bearer <CALLS_API_TOKEN>   (compared in constant time; never logged)
 *     Idempotency-Key: <key>                    (optional: the same key answers the same call)
 *   → 202 { call } (200 for a repeated key), Location: /calls/<id>
 *
 * Without CALLS_API_TOKEN the endpoint does not exist: 404, the answer of any unknown route. Not
 * 403: no credential can make it work, and it does not tell a scanner that outbound calling is
 * there to be unlocked. Without or with a wrong token: 401 with `WWW-Authenticate: Bearer`.
 * GET /calls/:id (routes/calls.ts) shows an outbound call's status to the same token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import type { Config } from '../../core/config.js';
import type { OutboundRequest } from '../../admission/outbound.js';
import type { AppDeps } from '../deps.js';

const E164 = /^\+[1-9]\d{6,14}$/;
const SIP_URI = /^sips?:[^@\s]+@[^@\s]+$/;
const MAX_METADATA_BYTES = 4_096;
/** notBefore at most this far ahead. */
const MAX_DELAY_MS = 30 * 24 * 3_600_000;

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The request carries CALLS_API_TOKEN as a Bearer token (constant-time compare of digests). */
export function callsTokenOk(config: Config, headers: IncomingHttpHeaders): boolean {
  const want = config.outbound.apiToken;
  const authz = headers.authorization;
  if (!want || typeof authz !== 'string') return false;
  const m = /^Bearer\s+(.+)$/i.exec(authz.trim());
  return m !== null && timingSafeEqual(digest(m[1]!), digest(want));
}

export const OutboundBody = Type.Object(
  {
    to: Type.String({ minLength: 1, maxLength: 512 }),
    bot: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._-]+$' }),
    from: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    notBefore: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Integer({ minimum: 0 })])),
    statusUrl: Type.Optional(Type.String({ maxLength: 2_048, pattern: '^https?://' })),
  },
  { additionalProperties: false },
);
type Body = Static<typeof OutboundBody>;

/** The checks the schema cannot make: the request, or why it is refused. */
export function parseOutbound(b: Body, hasBot: (name: string) => boolean, now = Date.now()): OutboundRequest | string {
  const to = b.to.trim();
  if (!E164.test(to) && !SIP_URI.test(to)) return '`to` must be an E.164 phone number (+15551234567) or a SIP URI (sip:user@host)';
  if (!hasBot(b.bot)) return `unknown bot "${b.bot}"`;
  if (b.metadata !== undefined && JSON.stringify(b.metadata).length > MAX_METADATA_BYTES)
    return `metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`;
  let notBeforeMs: number | undefined;
  if (b.notBefore !== undefined) {
    notBeforeMs = typeof b.notBefore === 'number' ? b.notBefore : Date.parse(b.notBefore);
    if (!Number.isFinite(notBeforeMs)) return '`notBefore` must be an ISO 8601 time or epoch milliseconds';
    if (notBeforeMs > now + MAX_DELAY_MS) return '`notBefore` must be within 30 days';
  }
  return {
    to: E164.test(to) ? { phoneNumber: to } : { sipUri: to },
    bot: b.bot,
    ...(b.from !== undefined ? { from: b.from } : {}),
    ...(b.metadata !== undefined ? { metadata: b.metadata } : {}),
    ...(notBeforeMs !== undefined ? { notBeforeMs } : {}),
    ...(b.statusUrl !== undefined ? { statusUrl: b.statusUrl } : {}),
  };
}

function validationMessage(err: unknown): string {
  const v = (err as { validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }> }).validation?.[0];
  const extra = v?.params?.additionalProperty;
  if (extra !== undefined) return `unknown field "${String(extra)}" (allowed: to, bot, from, metadata, notBefore, statusUrl)`;
  const missing = v?.params?.missingProperty;
  if (missing !== undefined) return `\`${String(missing)}\` is required`;
  const field = (v?.instancePath ?? '').replace(/^\//, '');
  return field ? `\`${field}\` ${v?.message ?? 'is invalid'}` : `the body ${v?.message ?? 'is invalid'} (a JSON object)`;
}

function refuse(req: FastifyRequest, reply: FastifyReply, status: 400 | 401, error: string, message: string) {
  req.log.warn({ path: req.routeOptions.url, status, err: message }, 'request refused');
  if (status === 401) void reply.header('www-authenticate', 'Bearer');
  return reply.code(status).send({ error, message });
}

export const outboundRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const outbound = deps.outbound;
  // Off: the route is not there at all (Fastify's own 404, like any unknown route).
  if (!deps.config.outbound.apiToken || !outbound) return;
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  // The token is checked before the body is read: an unauthenticated request learns nothing of the schema.
  const onRequest = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!callsTokenOk(deps.config, req.headers))
      return refuse(req, reply, 401, 'unauthorized', 'POST /calls needs Authorization: Bearer <CALLS_API_TOKEN>');
  };
  app.post('/calls', { schema: { body: OutboundBody }, attachValidation: true, onRequest }, async (req, reply) => {
    if (req.validationError) return refuse(req, reply, 400, 'invalid_request', validationMessage(req.validationError));
    const key = req.headers['idempotency-key'];
    if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 200))
      return refuse(req, reply, 400, 'invalid_request', 'Idempotency-Key must be 1 to 200 characters');
    const parsed = parseOutbound(req.body, (name) => outbound.hasBot(name));
    if (typeof parsed === 'string') return refuse(req, reply, 400, 'invalid_request', parsed);
    const { view, duplicate } = outbound.place(parsed, key);
    req.log.info({ id: view.id, bot: view.bot, duplicate }, 'outbound call queued');
    return reply
      .code(duplicate ? 200 : 202)
      .header('location', `/calls/${view.id}`)
      .send({ call: view, duplicate });
  });
};

/** GET /calls and /calls/:id: the calls token opens them too (else the dashboard's rules). */
export function callsReadHook(config: Config, dashboardHook: (req: FastifyRequest, reply: FastifyReply) => Promise<void>) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (callsTokenOk(config, req.headers)) return;
    return dashboardHook(req, reply);
  };
}
