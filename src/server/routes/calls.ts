/**
 * GET /calls?limit=&outcome=&before= — stored call records, newest first (see docs/dashboard.md).
 *
 *   limit    1..500, default 50
 *   outcome  one of the outcomes in src/dispatch/outcome.ts
 *   before   a `seq` (the previous page's `nextBefore`): only older records
 *
 * Numbers are always shown masked, whatever the database holds. Needs DASHBOARD_TOKEN when it is set.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { OUTCOMES, isOutcome, type Outcome } from '../../core/outcome.js';
import { maskNumber } from '../../logger.js';
import { MAX_LIST_LIMIT, type StoredCall } from '../../records/store.js';
import type { AppDeps } from '../deps.js';
import { dashboardAuth } from './dashboard-auth.js';

const DEFAULT_LIMIT = 50;
const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() });

export const StoredCallSchema = Type.Object({
  seq: Type.Integer(),
  id: Type.String(),
  callId: Type.String(),
  callDomain: Type.String(),
  from: Type.String(),
  to: Type.String(),
  bot: Type.String(),
  roomName: Type.String(),
  outcome: Type.String(),
  detail: Type.Union([Type.String(), Type.Null()]),
  receivedAtMs: Type.Integer(),
  endedAtMs: Type.Integer(),
  durationMs: Type.Integer(),
  warmStart: Type.Union([Type.Boolean(), Type.Null()]),
  workerPid: Type.Union([Type.Integer(), Type.Null()]),
  timeline: Type.Record(Type.String(), Type.Number()),
  botEvents: Type.Array(Type.Object({ kind: Type.String(), value: Type.String(), atMs: Type.Number() })),
  traceId: Type.Union([Type.String(), Type.Null()]),
  path: Type.Union([Type.Literal('warm'), Type.Literal('cold'), Type.Null()]),
});

/** A stored call as shown to people: numbers masked. */
export function showCall(c: StoredCall): StoredCall {
  return { ...c, from: maskNumber(c.from) ?? '', to: maskNumber(c.to) ?? '' };
}

export const callsRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const auth = dashboardAuth(deps.config.dashboard.token);

  app.get(
    '/calls',
    {
      // Query strings are strings (the app does not coerce types): shapes here, ranges below.
      schema: {
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$' })),
            outcome: Type.Optional(Type.String({ maxLength: 64 })),
            before: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
            token: Type.Optional(Type.String({ maxLength: 512 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ calls: Type.Array(StoredCallSchema), nextBefore: Type.Union([Type.Integer(), Type.Null()]) }),
          400: ErrorBody,
          401: ErrorBody,
          404: ErrorBody,
        },
      },
      attachValidation: true,
      onRequest: auth.hook,
    },
    async (req, reply) => {
      const refuse = (message: string) => {
        req.log.warn({ path: '/calls', status: 400, err: message }, 'request refused');
        return reply.code(400).send({ error: 'invalid_query', message });
      };
      if (req.validationError) {
        const v = req.validationError as Error & { validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }> };
        const first = v.validation?.[0];
        const extra = first?.params?.additionalProperty;
        const field = extra ? String(extra) : (first?.instancePath ?? '').replace(/^\//, '');
        return refuse(extra ? `unknown query parameter "${field}" (allowed: limit, outcome, before)` : `query parameter "${field}" ${first?.message ?? 'is invalid'}`);
      }
      const q = req.query;
      const limit = q.limit === undefined ? DEFAULT_LIMIT : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) return refuse(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
      if (q.outcome !== undefined && !isOutcome(q.outcome)) return refuse(`outcome must be one of: ${OUTCOMES.join(', ')}`);
      const before = q.before === undefined ? undefined : Number(q.before);
      if (before !== undefined && before < 1) return refuse('before must be a positive integer (a seq from a previous page)');
      const store = deps.records;
      if (!store) return reply.code(404).send({ error: 'records_off', message: 'call records are off (CALL_RECORDS_PATH=off)' });
      // Records still queued for writing are not lost, just not visible yet: write them first.
      await store.flush();
      const calls = store
        .list({ limit, ...(q.outcome !== undefined ? { outcome: q.outcome as Outcome } : {}), ...(before !== undefined ? { before } : {}) })
        .map(showCall);
      const last = calls.at(-1);
      return { calls, nextBefore: calls.length === limit && last ? last.seq : null };
    },
  );
};
