/**
 * A canary's two sides compared (docs/bots.md, "Canary"; src/records/canary.ts):
 *
 *   GET /analytics/canary?bot=<stable bot>&canary=<canary bot>&from=&to=
 *
 * → { alpha, stable: { bot, calls, outcomes }, canary: {…}, outcomes: { test, statistic, df, p,
 *     significant, approximate, statement }, steps: [{ step, stable: { reached, share }, canary: {…}, z: {…} }] }
 *
 * Ended calls from the records database (every replica's in PostgreSQL mode), under the dashboard's
 * access rules (dashboard-auth.ts), as GET /analytics/funnel.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { compareCanary } from '../../records/canary.js';
import type { AppDeps } from '../deps.js';
import { parseTime } from './calls.js';
import { dashboardAuth } from './dashboard-auth.js';

const Name = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:+-]*$' });
const CanaryQuerySchema = Type.Object(
  {
    bot: Name,
    canary: Name,
    from: Type.Optional(Type.String({ maxLength: 40 })),
    to: Type.Optional(Type.String({ maxLength: 40 })),
    token: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);

export const canaryAnalyticsRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const auth = dashboardAuth(deps.config);
  app.get(
    '/analytics/canary',
    { schema: { querystring: CanaryQuerySchema }, attachValidation: true, onRequest: auth.hook },
    async (req, reply) => {
      const refuse = (message: string) => {
        req.log.warn({ path: req.routeOptions.url, status: 400, err: message }, 'request refused');
        return reply.code(400).send({ error: 'invalid_query', message });
      };
      if (req.validationError) return refuse('bot and canary (bot names) are required; from and to are optional ISO 8601 times');
      const q = req.query;
      const fromMs = q.from === undefined ? undefined : parseTime(q.from);
      const toMs = q.to === undefined ? undefined : parseTime(q.to);
      if ((q.from !== undefined && fromMs === undefined) || (q.to !== undefined && toMs === undefined))
        return refuse('from and to must be ISO 8601 times, e.g. 2026-12-01T17:00:00Z');
      const store = deps.records;
      if (!store)
        return reply.code(404).send({ error: 'records_off', message: 'call records are off (CALL_RECORDS_PATH=off and no DATABASE_URL)' });
      return compareCanary(store, { bot: q.bot, canary: q.canary, fromMs, toMs });
    },
  );
};
