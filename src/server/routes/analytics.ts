/**
 * Step funnels (docs/bots.md "Steps and funnels", docs/dashboard.md):
 *
 *   GET /analytics/funnel?bot=&version=&from=&to=
 *     bot      the bot (required)
 *     version  one of its versions (declared, or the hash of its files); all of them when absent
 *     from,to  ISO 8601 times: calls received from (inclusive) … to (exclusive)
 *
 * → { bot, version?, from?, to?, steps: [{ step, reached, last: { <outcome>: n }, medianMs, hangups, transfers }] }
 *
 * Ended calls only, from the records database: every replica's in PostgreSQL mode. Under the
 * dashboard's access rules (dashboard-auth.ts), as GET /calls.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AppDeps } from '../deps.js';
import { parseTime } from './calls.js';
import { dashboardAuth } from './dashboard-auth.js';

const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() });
const Name = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:+-]*$' });

const FunnelQuerySchema = Type.Object(
  {
    bot: Name,
    version: Type.Optional(Name),
    from: Type.Optional(Type.String({ maxLength: 40 })),
    to: Type.Optional(Type.String({ maxLength: 40 })),
    token: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);

const FunnelStepSchema = Type.Object({
  step: Type.String(),
  reached: Type.Integer(),
  last: Type.Record(Type.String(), Type.Integer()),
  medianMs: Type.Number(),
  hangups: Type.Integer(),
  transfers: Type.Integer(),
});

export const FunnelSchema = Type.Object({
  bot: Type.String(),
  version: Type.Optional(Type.String()),
  from: Type.Optional(Type.String()),
  to: Type.Optional(Type.String()),
  steps: Type.Array(FunnelStepSchema),
});

export const analyticsRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const auth = dashboardAuth(deps.config);
  app.get(
    '/analytics/funnel',
    {
      schema: { querystring: FunnelQuerySchema, response: { 200: FunnelSchema, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody } },
      attachValidation: true,
      onRequest: auth.hook,
    },
    async (req, reply) => {
      const refuse = (message: string) => {
        req.log.warn({ path: req.routeOptions.url, status: 400, err: message }, 'request refused');
        return reply.code(400).send({ error: 'invalid_query', message });
      };
      if (req.validationError) {
        const v = req.validationError.validation?.[0];
        const field = String(v?.params?.additionalProperty ?? v?.instancePath?.replace(/^\//, '') ?? '');
        return refuse(
          v?.keyword === 'additionalProperties'
            ? `unknown query parameter "${field}" (allowed: bot, version, from, to)`
            : v?.keyword === 'required'
              ? 'query parameter "bot" is required'
              : `query parameter "${field}" ${v?.message ?? 'is invalid'}`,
        );
      }
      const q = req.query;
      const fromMs = q.from === undefined ? undefined : parseTime(q.from);
      if (q.from !== undefined && fromMs === undefined) return refuse('from must be an ISO 8601 time, e.g. 2026-12-01T17:00:00Z');
      const toMs = q.to === undefined ? undefined : parseTime(q.to);
      if (q.to !== undefined && toMs === undefined) return refuse('to must be an ISO 8601 time, e.g. 2026-12-01T18:00:00Z');
      const store = deps.records;
      if (!store)
        return reply.code(404).send({ error: 'records_off', message: 'call records are off (CALL_RECORDS_PATH=off and no DATABASE_URL)' });
      const steps = await store.funnel({ bot: q.bot, version: q.version, fromMs, toMs });
      return {
        bot: q.bot,
        ...(q.version !== undefined ? { version: q.version } : {}),
        ...(fromMs !== undefined ? { from: new Date(fromMs).toISOString() } : {}),
        ...(toMs !== undefined ? { to: new Date(toMs).toISOString() } : {}),
        steps: steps.map((s) => ({
          ...s,
          last: Object.fromEntries(Object.entries(s.last).filter((e): e is [string, number] => e[1] !== undefined)),
        })),
      };
    },
  );
};
