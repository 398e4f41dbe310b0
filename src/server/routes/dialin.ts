/**
 * POST /dialin — Daily's pinless dial-in webhook (`room_creation_api`).
 *
 * Order: parse (raw bytes kept) → probe bodies answered 200 with no bot → signature (fail closed
 * when a secret is configured) → required fields (400) → admission (200 with our id and the
 * room URL, or 503 + Retry-After when this replica cannot take the call, or 502 without Retry-After
 * when Daily refused the room for good: the same request would fail again). A withheld caller ID
 * (`From` empty, missing, `anonymous`, `sip:anonymous@…`, …) is a real call from `withheld`.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { isProbeBody, PinlessWebhookBody, toPinlessCall } from '../../daily/types.js';
import { maskNumber } from '../../core/logger.js';
import type { AppDeps } from '../deps.js';
import { refuseUnsigned } from '../signed-request.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Why a dial-in webhook was answered without admitting the call (counted in /metrics). */
    dialinRefusal?: string;
  }
}

const ErrorBody = Type.Object({ error: Type.String(), message: Type.String(), reason: Type.Optional(Type.String()) });

const DialinSchema = {
  headers: Type.Object({
    'x-pinless-timestamp': Type.Optional(Type.String({ maxLength: 32 })),
    'x-pinless-signature': Type.Optional(Type.String({ maxLength: 256 })),
  }),
  body: PinlessWebhookBody,
  response: {
    200: Type.Object({
      status: Type.String(),
      probe: Type.Optional(Type.Boolean()),
      id: Type.Optional(Type.String()),
      callId: Type.Optional(Type.String()),
      roomUrl: Type.Optional(Type.String()),
      duplicate: Type.Optional(Type.Boolean()),
    }),
    400: ErrorBody,
    401: ErrorBody,
    502: ErrorBody,
    503: ErrorBody,
  },
};

const isObject = (b: unknown): b is Record<string, unknown> => typeof b === 'object' && b !== null && !Array.isArray(b);

export const dialinRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const secrets = deps.pinlessSecrets;

  app.post(
    '/dialin',
    {
      schema: DialinSchema,
      // Runs before schema validation, so an unsigned request is refused before we look at its shape.
      preValidation: async (req, reply) => {
        if (isObject(req.body) && isProbeBody(req.body)) return;
        if (secrets.length === 0) return;
        return refuseUnsigned(req, reply, {
          what: 'dialin webhook',
          timestampHeader: 'x-pinless-timestamp',
          signatureHeader: 'x-pinless-signature',
          secrets,
          windowMs: deps.config.daily.signatureWindowMs,
        });
      },
    },
    async (req, reply) => {
      const receivedAtMs = Date.now();
      const body = req.body;
      if (isProbeBody(body)) {
        req.log.info({ to: body.To }, 'dialin probe answered');
        return { status: 'ok', probe: true };
      }
      const call = toPinlessCall(body);
      if ('missing' in call) {
        req.dialinRefusal = 'missing_fields';
        req.log.warn({ missing: call.missing }, 'dialin webhook refused: missing fields');
        return reply.code(400).send({ error: 'missing_fields', message: `missing or empty: ${call.missing.join(', ')}` });
      }
      const result = await deps.dispatcher.admit(call, receivedAtMs);
      if (result.kind === 'busy') {
        req.dialinRefusal = result.reason;
        req.log.warn({ callId: call.callId, reason: result.reason, from: maskNumber(call.from) }, 'dialin webhook refused: busy');
        reply.header('retry-after', String(result.retryAfterSec));
        return reply.code(503).send({ error: 'busy', reason: result.reason, message: result.message });
      }
      if (result.kind === 'refused') {
        req.dialinRefusal = result.reason;
        req.log.error(
          { callId: call.callId, reason: result.reason, detail: result.message },
          'dialin webhook failed: Daily refused the room (not retryable)',
        );
        return reply.code(502).send({ error: 'room_refused', reason: result.reason, message: result.message });
      }
      const r = result.record;
      req.log.info(
        { callId: call.callId, id: r.id, bot: r.bot, duplicate: result.duplicate, ackMs: Date.now() - receivedAtMs },
        result.duplicate ? 'dialin webhook repeated: same answer, no new bot' : 'call admitted',
      );
      return {
        status: r.state === 'ended' ? 'ended' : 'accepted',
        id: r.id,
        callId: r.callId,
        roomUrl: r.roomUrl,
        duplicate: result.duplicate,
      };
    },
  );
};
