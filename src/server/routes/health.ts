import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AppDeps } from '../deps.js';

const Health = Type.Object({ status: Type.String(), reason: Type.Optional(Type.String()) });

const Status = Type.Object({
  version: Type.String(),
  uptimeMs: Type.Integer(),
  draining: Type.Boolean(),
  activeCalls: Type.Integer(),
  queuedCalls: Type.Integer(),
  admitting: Type.Integer(),
  capacity: Type.Integer(),
  maxConcurrentBots: Type.Integer(),
  workers: Type.Object({
    idle: Type.Integer(),
    starting: Type.Integer(),
    busy: Type.Integer(),
    coldStarts: Type.Integer(),
    warmStarts: Type.Integer(),
  }),
  /** Room deletions (Daily's slowest rate class): queued now, at most at once, deleted, left to their `exp`. */
  roomDeletions: Type.Object({
    backlog: Type.Integer(),
    backlogPeak: Type.Integer(),
    deleted: Type.Integer(),
    leftToExpire: Type.Integer(),
    givenUp: Type.Integer(),
    rateLimited: Type.Integer(),
  }),
  callClient: Type.String(),
  emulator: Type.Boolean(),
  /** The bots new calls get (generation: reloads since start-up) and the last reload (docs/operations.md). */
  bots: Type.Optional(Type.Unknown()),
  /** Fleet mode: every replica's capacity, load, draining and live calls (src/fleet fleetStatus). */
  fleet: Type.Optional(Type.Unknown()),
});

export const healthRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/health/live', { schema: { response: { 200: Health } } }, async () => ({ status: 'ok' }));

  app.get('/health/ready', { schema: { response: { 200: Health, 503: Health } } }, async (_req, reply) => {
    const s = deps.dispatcher.stats();
    if (s.draining) return reply.code(503).send({ status: 'unavailable', reason: 'draining' });
    if (s.full) return reply.code(503).send({ status: 'unavailable', reason: 'full' });
    if (deps.fleet?.waitingForRedis) return reply.code(503).send({ status: 'unavailable', reason: 'fleet_connecting' });
    return { status: 'ok' };
  });

  app.get(
    '/status',
    {
      schema: {
        response: {
          200: Status,
        },
      },
    },
    async () => {
      const s = deps.dispatcher.stats();
      const r = deps.dispatcher.roomStats();
      return {
        version: deps.version,
        uptimeMs: Math.round(process.uptime() * 1000),
        draining: s.draining,
        activeCalls: s.active,
        queuedCalls: s.queued,
        admitting: s.admitting,
        capacity: s.capacity,
        maxConcurrentBots: deps.config.admission.maxConcurrentBots,
        workers: deps.pool.stats(),
        roomDeletions: {
          backlog: r.backlog,
          backlogPeak: r.backlogPeak,
          deleted: r.deleted,
          leftToExpire: r.dropped,
          givenUp: r.givenUp,
          rateLimited: r.rateLimited,
        },
        callClient: deps.config.daily.callClient,
        emulator: deps.config.emulator.enabled,
        ...(deps.reloads ? { bots: deps.reloads.status() } : {}),
        ...(deps.fleet ? { fleet: await deps.fleet.status() } : {}),
      };
    },
  );
};
