/**
 * POST /webhooks/daily — Daily's domain webhooks (`dialin.*`, `meeting.*`, `participant.*`).
 *
 * Order: verification request (`{"test":"test"}`) answered 200 → basic auth (when
 * DAILY_WEBHOOK_BASIC_AUTH is set) → signature (`X-Webhook-Signature` / `X-Webhook-Timestamp`,
 * fail closed when a secret is configured; with neither a secret nor basic auth every event is
 * refused unless DAILY_WEBHOOK_ALLOW_UNSIGNED=true, development only) → envelope shape (400) → dedupe by event `id` →
 * `reconciler.reconcile(event)` (src/call/reconcile.ts) → 200 at once. Daily marks a webhook FAILED after repeated
 * failures, so every well-formed, authentic event gets its 200 whatever we make of it.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { checkBasicAuth, DomainEventBody, EventDeduper, isWebhookVerification } from '../../daily/webhook-events.js';
import type { AppDeps } from '../deps.js';
import { refuseUnsigned } from '../signed-request.js';

const ErrorBody = Type.Object({ error: Type.String(), message: Type.String(), reason: Type.Optional(Type.String()) });

/** Daily's exponential retries span minutes; an hour covers them with room to spare. */
const DEDUPE_TTL_MS = 60 * 60_000;
const DEDUPE_MAX = 20_000;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/** Verification policy: who may send an event that ends calls. */
function webhookVerifier(deps: AppDeps): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  const secrets = deps.webhookSecrets ?? deps.config.daily.webhookHmacSecrets;
  const basicAuth = deps.config.daily.webhookBasicAuth;
  // Events nobody can verify must not end calls, unless development says so explicitly.
  const unverifiable = secrets.length === 0 && basicAuth === undefined;
  const refuseUnverified = unverifiable && !deps.config.daily.webhookAllowUnsigned;
  if (unverifiable) {
    deps.logger.warn(
      refuseUnverified
        ? 'neither DAILY_WEBHOOK_HMAC nor DAILY_WEBHOOK_BASIC_AUTH is set: POST /webhooks/daily refuses every event (DAILY_WEBHOOK_ALLOW_UNSIGNED=true accepts them in development)'
        : '!!! DAILY_WEBHOOK_ALLOW_UNSIGNED=true: domain webhooks are NOT verified; anyone who can reach /webhooks/daily can end calls. Development only. !!!',
    );
  }
  return async (req, reply) => {
    if (isWebhookVerification(req.body)) return;
    if (basicAuth !== undefined && !checkBasicAuth(req.headers.authorization, basicAuth)) {
      req.server.refusals.note(req.ip, 'daily webhook refused: bad basic auth', {
        reason: req.headers.authorization ? 'mismatch' : 'missing',
      });
      reply.header('www-authenticate', 'Basic realm="patchbay"');
      return reply.code(401).send({ error: 'invalid_credentials', message: 'basic auth required' });
    }
    if (refuseUnverified) {
      req.server.refusals.note(req.ip, 'daily webhook refused: DAILY_WEBHOOK_HMAC is not configured');
      return reply
        .code(401)
        .send({ error: 'invalid_signature', reason: 'not_configured', message: 'webhook verification is not configured' });
    }
    if (secrets.length === 0) return;
    return refuseUnsigned(req, reply, {
      what: 'daily webhook',
      timestampHeader: 'x-webhook-timestamp',
      signatureHeader: 'x-webhook-signature',
      secrets,
      windowMs: deps.config.daily.signatureWindowMs,
    });
  };
}

/** One authentic domain event: deduped, reconciled (or routed to its owner in fleet mode), logged. */
async function handleEvent(deps: AppDeps, deduper: EventDeduper, req: FastifyRequest, ev: DomainEventBody): Promise<WebhookAnswer> {
  const payload = ev.payload as Record<string, unknown>;
  const room = str(payload.room);
  const message = str(payload.error_msg) ?? str(payload.warning_msg) ?? str(payload.error) ?? str(payload.message);
  const input = { type: ev.type, id: ev.id, room, ...(message === undefined ? {} : { message }) };
  // Fleet mode: deduped fleet-wide and handled by the replica that owns the room.
  const result = deps.fleet
    ? await deps.fleet.domainEvent(input, () => deduper.firstSeen(ev.id))
    : deduper.firstSeen(ev.id)
      ? deps.reconciler.reconcile(input)
      : { duplicate: true as const };
  if ('duplicate' in result && result.duplicate) {
    req.log.info({ event: ev.type, eventId: ev.id, room }, 'daily webhook repeated: already handled');
    return { status: 'ok', duplicate: true };
  }
  const level = ev.type === 'dialin.error' || ev.type === 'dialin.warning' ? 'warn' : 'info';
  req.log[level](
    {
      event: ev.type,
      eventId: ev.id,
      room,
      action: result.action,
      ...(result.id ? { id: result.id } : {}),
      ...(message === undefined ? {} : { message }),
      ...(typeof ev.event_ts === 'number' ? { lagMs: Math.round(Date.now() - ev.event_ts * 1000) } : {}),
    },
    'daily webhook event',
  );
  return { status: 'ok', action: result.action };
}

const WebhookAnswer = Type.Object({
  status: Type.String(),
  probe: Type.Optional(Type.Boolean()),
  duplicate: Type.Optional(Type.Boolean()),
  action: Type.Optional(Type.String()),
});
type WebhookAnswer = Static<typeof WebhookAnswer>;

export const dailyWebhookRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const deduper = new EventDeduper({ ttlMs: DEDUPE_TTL_MS, max: DEDUPE_MAX });
  app.post(
    '/webhooks/daily',
    {
      schema: {
        headers: Type.Object({
          'x-webhook-timestamp': Type.Optional(Type.String({ maxLength: 32 })),
          'x-webhook-signature': Type.Optional(Type.String({ maxLength: 256 })),
        }),
        body: Type.Union([DomainEventBody, Type.Object({ test: Type.Unknown() })]),
        response: { 200: WebhookAnswer, 400: ErrorBody, 401: ErrorBody },
      },
      // Before schema validation: an unauthenticated request is refused before we look at its shape.
      preValidation: webhookVerifier(deps),
    },
    async (req) => {
      const body = req.body;
      if (isWebhookVerification(body)) {
        req.log.info('daily webhook verification request answered');
        return { status: 'ok', probe: true };
      }
      return handleEvent(deps, deduper, req, body as DomainEventBody);
    },
  );
};
