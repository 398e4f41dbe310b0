/**
 * Daily's REST API under /v1 (the subset patchbay needs, with Daily's error shapes) and the
 * emulator's control API under /_emulator (no auth; the emulator binds 127.0.0.1).
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { EmulatorCore, SocketCounts } from './core.js';
import { ApiError, dailyErrorName } from './errors.js';
import { checkScript, type CallImpl } from './call.js';
import { LATENCY_NAMES } from './latencies.js';
import { RateLimitSettingsSchema } from './rate-limits.js';
import { webhookRoutes } from './webhooks.js';
import { FaultsUpdateSchema } from './fault-schema.js';
import { WITHHELD_FROM } from './dialin.js';
import type { CallerStep, DialOutTarget, PinlessDialinEntry } from './types.js';
import { errorMessage } from '../core/errors.js';

type App = FastifyInstance;

const ErrorBody = Type.Object({ error: Type.String(), info: Type.String() });
const AnyObject = Type.Object({}, { additionalProperties: true });
const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 256 }) });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

function sendError(reply: FastifyReply, e: ApiError): FastifyReply {
  if (e.retryAfterSec !== undefined) void reply.header('retry-after', String(e.retryAfterSec));
  return reply.code(e.status).send({ error: e.error, info: e.info });
}

const v1Path = (url: string): string => (url.split('?')[0] ?? '/').replace(/^\/v1/, '') || '/';

function keyMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Error handler and 404s in Daily's `{error, info}` shape, for both route trees. */
export function installErrorHandling(app: App, core: EmulatorCore): void {
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, _req, reply) => {
    if (err instanceof ApiError) return sendError(reply, err);
    if (err.validation) return sendError(reply, new ApiError(400, 'invalid-request-error', err.message));
    if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError) {
      return sendError(reply, new ApiError(400, 'json-parsing-error', 'the request body could not be parsed as JSON'));
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) core.log.error({ err }, 'emulator: internal error');
    return sendError(reply, new ApiError(status, dailyErrorName(status), status === 500 ? 'unexpected emulator error' : err.message));
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new ApiError(404, 'not-found', `no such endpoint: ${req.method} ${req.url.split('?')[0]}`)),
  );
}

/** The Daily REST API. Register with `{prefix: '/v1'}`. */
export function dailyRoutes(core: EmulatorCore, apiKey: string) {
  return async function plugin(fastify: App): Promise<void> {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    // Faults and rate limit first (they stand for Daily's edge), then the bearer key.
    // (preValidation: after body parsing, so that the request log can name the callId.)
    // Once per request: Fastify runs the plugin's hook and the not-found handler's own for unknown routes.
    const guarded = new WeakSet<FastifyRequest>();
    /** Requests carried out whose answer is held back (`answerDelayMs` faults). */
    const lateAnswers = new WeakMap<FastifyRequest, number>();
    app.addHook('onSend', async (req, _reply, payload) => {
      const ms = lateAnswers.get(req);
      if (ms) await core.timers.sleep(ms);
      return payload;
    });
    const guard = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
      if (guarded.has(req)) return undefined;
      guarded.add(req);
      const path = v1Path(req.url);
      const d = core.faults.decide(req.method, path);
      if (d.delayMs > 0) await core.timers.sleep(d.delayMs);
      if (d.kind === 'pass' && d.answerDelayMs) lateAnswers.set(req, d.answerDelayMs);
      if (d.kind === 'fail') {
        const info = d.rateLimited ? 'rate limit exceeded' : `injected fault (${d.status})`;
        return sendError(reply, new ApiError(d.status, dailyErrorName(d.status), info, d.retryAfterSec));
      }
      // Daily's REST docs: no (or a malformed) `Authorization: Bearer` header → 400 authorization-header-error;
      // a key that is not valid → 401 authentication-error.
      const auth = req.headers.authorization;
      const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
      if (!m) return sendError(reply, new ApiError(400, 'authorization-header-error', 'missing or malformed Authorization header'));
      if (!keyMatches(m[1]!, apiKey)) return sendError(reply, new ApiError(401, 'authentication-error', 'the API key is not valid'));
      // Daily's per-domain limits count authenticated requests (rate-limits.ts). No Retry-After: Daily documents none.
      const rl = core.rateLimits.take(req.method, path, req.ip);
      if (!rl.ok) return sendError(reply, new ApiError(429, 'rate-limit-error', `rate limit exceeded (${rl.class} endpoints)`));
      return undefined;
    };
    app.addHook('preValidation', guard);
    // Unknown /v1 routes: faults and auth first, like any other Daily route.
    app.setNotFoundHandler({ preValidation: guard }, (req, reply) =>
      sendError(reply, new ApiError(404, 'not-found', `no such endpoint: ${req.method} ${req.url.split('?')[0]}`)),
    );
    // When a request arrived (Daily counts it then), on the same clock as callers' Date.now(): the
    // answer time minus Fastify's elapsed time could land a millisecond before the arrival.
    const arrivedAt = new WeakMap<FastifyRequest, number>();
    app.addHook('onRequest', async (req: FastifyRequest) => {
      arrivedAt.set(req, Date.now());
    });
    app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
      const body = req.body as { callId?: unknown } | undefined;
      core.logRequest({
        // The entry is written once the answer is sent.
        atMs: arrivedAt.get(req) ?? Date.now(),
        method: req.method,
        path: v1Path(req.url),
        status: reply.statusCode,
        ...(body && typeof body === 'object' && typeof body.callId === 'string' ? { callId: body.callId } : {}),
      });
    });

    // ── domain ──
    app.get('/', { schema: { response: { 200: AnyObject } } }, async () => core.domainJson());
    app.post(
      '/',
      {
        schema: {
          body: Type.Object({ properties: Type.Optional(AnyObject) }, { additionalProperties: true }),
          response: { 200: AnyObject },
        },
      },
      async (req) => {
        const props = (req.body.properties ?? {}) as Record<string, unknown>;
        for (const k of Object.keys(props)) {
          if (k !== 'pinless_dialin')
            throw new ApiError(400, 'invalid-request-error', `the emulator does not support domain property '${k}'`);
        }
        // Like Daily: the array replaces the whole pinless_dialin configuration.
        if (props.pinless_dialin !== undefined) {
          core.pinless.set(props.pinless_dialin);
          core.pinlessWebhook.probe(core.pinless.list());
        }
        return core.domainJson();
      },
    );

    // ── webhooks (webhooks.ts) ──
    await app.register(webhookRoutes(core.webhooks));

    // ── domain-dialin-config ──
    app.get(
      '/domain-dialin-config',
      {
        schema: {
          querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }, { additionalProperties: true }),
        },
      },
      async (req) => {
        const all = core.pinless.list().map((e) => core.pinless.configJson(e));
        const data = all.slice(0, req.query.limit ?? 100);
        return { total_count: all.length, data };
      },
    );
    app.get('/domain-dialin-config/:id', { schema: { params: IdParams } }, async (req) => core.pinless.get(req.params.id));
    const probed = (cfg: Record<string, unknown>): Record<string, unknown> => {
      core.pinlessWebhook.probe([cfg.config as PinlessDialinEntry]);
      return cfg;
    };
    app.post('/domain-dialin-config', { schema: { body: AnyObject } }, async (req) => probed(core.pinless.create(req.body)));
    app.put('/domain-dialin-config/:id', { schema: { params: IdParams, body: AnyObject } }, async (req) =>
      probed(core.pinless.update(req.params.id, req.body)),
    );
    app.delete('/domain-dialin-config/:id', { schema: { params: IdParams } }, async (req) => {
      core.pinless.delete(req.params.id);
      return { deleted: true, id: req.params.id };
    });

    // ── rooms ──
    app.post(
      '/rooms',
      {
        schema: { body: Type.Union([AnyObject, Type.Null()]), response: { 200: AnyObject, 400: ErrorBody } },
        preValidation: async (req) => {
          if (req.body === undefined) req.body = {};
        },
      },
      async (req) => {
        await core.timers.sleep(core.latencies.values.roomCreateMs);
        return core.rooms.toJson(core.createRoom(req.body));
      },
    );
    app.get(
      '/rooms',
      {
        schema: {
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
              ending_before: Type.Optional(Type.String()),
              starting_after: Type.Optional(Type.String()),
            },
            { additionalProperties: true },
          ),
        },
      },
      async (req) => {
        // Daily: newest first; `ending_before` = created before (older than) that room id, `starting_after` = after it.
        const rooms = [...core.rooms.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
        const { ending_before: before, starting_after: after } = req.query;
        let page = rooms;
        if (before !== undefined) page = page.slice(rooms.findIndex((r) => r.id === before) + 1 || rooms.length);
        if (after !== undefined)
          page = page.slice(
            0,
            Math.max(
              0,
              page.findIndex((r) => r.id === after),
            ),
          );
        return { total_count: rooms.length, data: page.slice(0, req.query.limit ?? 100).map((r) => core.rooms.toJson(r)) };
      },
    );
    app.get('/rooms/:name', { schema: { params: NameParams } }, async (req) => core.rooms.toJson(core.rooms.require(req.params.name)));
    app.get(
      '/rooms/:name/presence',
      {
        schema: {
          params: NameParams,
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1 })),
              userId: Type.Optional(Type.String()),
              userName: Type.Optional(Type.String()),
            },
            { additionalProperties: true },
          ),
        },
      },
      async (req) => {
        const room = core.rooms.require(req.params.name);
        // As of presenceLagMs ago (Daily's presence trails the room).
        const now = Date.now();
        const { limit, userId, userName } = req.query;
        const data = room.participants
          .presentAt(now - core.latencies.values.presenceLagMs)
          .filter((e) => (userId === undefined || e.sessionId === userId) && (userName === undefined || e.userName === userName))
          .map((e) => ({
            room: room.name,
            id: e.sessionId,
            userId: e.sessionId,
            userName: e.userName,
            joinTime: new Date(e.joinedAtMs).toISOString(),
            duration: Math.round((now - e.joinedAtMs) / 1000),
          }));
        return { total_count: data.length, data: data.slice(0, limit ?? data.length) };
      },
    );
    app.post('/rooms/:name', { schema: { params: NameParams, body: Type.Union([AnyObject, Type.Null()]) } }, async (req) =>
      core.rooms.toJson(core.updateRoom(req.params.name, req.body)),
    );
    app.delete(
      '/rooms/:name',
      { schema: { params: NameParams, response: { 200: Type.Object({ deleted: Type.Boolean(), name: Type.String() }) } } },
      async (req) => {
        await core.timers.sleep(core.latencies.values.roomDeleteMs);
        core.sessions.deleteRoom(req.params.name);
        return { deleted: true, name: req.params.name };
      },
    );

    // ── meeting tokens ──
    app.post('/meeting-tokens', { schema: { body: AnyObject, response: { 200: Type.Object({ token: Type.String() }) } } }, async (req) => {
      await core.timers.sleep(core.latencies.values.tokenCreateMs);
      return { token: core.tokens.create(req.body) };
    });

    app.get(
      '/meeting-tokens/:token',
      { schema: { params: Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }) }), response: { 200: AnyObject } } },
      async (req) => core.tokens.inspect(req.params.token),
    );

    // ── pinless dial-in ──
    app.post(
      '/dialin/pinlessCallUpdate',
      {
        schema: {
          body: Type.Object(
            {
              callId: Type.String({ minLength: 1, maxLength: 128 }),
              callDomain: Type.String({ minLength: 1, maxLength: 128 }),
              sipUri: Type.String({ minLength: 1, maxLength: 512 }),
            },
            { additionalProperties: true },
          ),
        },
      },
      async (req) => {
        await core.timers.sleep(core.latencies.values.pinlessUpdateMs);
        core.dialin.pinlessCallUpdate(req.body);
        // Daily's documented example answer.
        return { ok: 'true' };
      },
    );
  };
}

export function callJson(c: CallImpl): Record<string, unknown> {
  return {
    id: c.id,
    callId: c.callId,
    callDomain: c.callDomain,
    to: c.to,
    from: c.from,
    state: c.state,
    ...(c.reason ? { reason: c.reason } : {}),
    ...(c.sessionId ? { sessionId: c.sessionId } : {}),
    ...(c.roomName ? { roomName: c.roomName } : {}),
    ...(c.webhook ? { webhook: c.webhook } : {}),
    transcript: c.transcript,
  };
}

/** The control API for tools outside the process. Register with `{prefix: '/_emulator'}`. */
export function controlRoutes(core: EmulatorCore, sockets: () => SocketCounts) {
  return async function plugin(fastify: App): Promise<void> {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const getCall = (id: string): CallImpl => {
      const c = core.calls.get(id);
      if (!c) throw new ApiError(404, 'not-found', `call ${id} not found`);
      return c;
    };

    app.post(
      '/calls',
      {
        schema: {
          body: Type.Object(
            {
              to: Type.String({ minLength: 1, maxLength: 512 }),
              from: Type.Optional(Type.String({ maxLength: 512 })),
              withheld: Type.Optional(Type.Union(Object.keys(WITHHELD_FROM).map((k) => Type.Literal(k)))),
              sipHeaders: Type.Optional(Type.Record(Type.String(), Type.String())),
              script: Type.Optional(Type.Array(AnyObject, { maxItems: 1000 })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (req) => {
        const problem = req.body.script === undefined ? undefined : checkScript(req.body.script);
        if (problem) throw new ApiError(400, 'invalid-request-error', problem);
        const call = core.dialin.placeCall({
          to: req.body.to,
          ...(req.body.from !== undefined ? { from: req.body.from } : {}),
          ...(req.body.withheld !== undefined ? { withheld: req.body.withheld } : {}),
          ...(req.body.sipHeaders ? { sipHeaders: req.body.sipHeaders } : {}),
          ...(req.body.script ? { script: req.body.script as unknown as CallerStep[] } : {}),
        });
        return { id: call.id, callId: call.callId, state: call.state, ...(call.reason ? { reason: call.reason } : {}) };
      },
    );
    app.get('/calls', { schema: { response: { 200: AnyObject } } }, async () => ({
      data: [...core.calls.values()].map((c) => callJson(c)),
    }));
    app.get('/calls/:id', { schema: { params: IdParams } }, async (req) => callJson(getCall(req.params.id)));
    app.post(
      '/calls/:id/actions',
      {
        schema: {
          params: IdParams,
          body: Type.Object(
            {
              press: Type.Optional(Type.String({ pattern: '^[0-9*#A-Da-d]+$' })),
              say: Type.Optional(Type.String({ minLength: 1 })),
              hangup: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (req) => {
        const call = getCall(req.params.id);
        const b = req.body;
        if (call.state === 'ended') throw new ApiError(409, 'invalid-request-error', `call ${call.id} has ended`);
        if ((b.press !== undefined || b.say !== undefined) && call.state !== 'connected') {
          throw new ApiError(409, 'invalid-request-error', `call ${call.id} is not connected`);
        }
        if (b.say !== undefined) call.say(b.say);
        if (b.press !== undefined) void call.press(b.press);
        if (b.hangup === true) call.hangup();
        return { ok: true, state: call.state };
      },
    );

    app.put(
      '/dial-out-targets',
      {
        schema: {
          body: Type.Object(
            {
              uri: Type.String({ minLength: 1, maxLength: 512 }),
              answer: Type.Union([Type.Literal('answer'), Type.Literal('busy'), Type.Literal('unreachable'), Type.Literal('no-answer')]),
              answerAfterMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
              ringMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
              script: Type.Optional(Type.Array(AnyObject, { maxItems: 1000 })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (req) => {
        const problem = req.body.script === undefined ? undefined : checkScript(req.body.script);
        if (problem) throw new ApiError(400, 'invalid-request-error', problem);
        const { uri, ...target } = req.body;
        core.dialOut.setTarget(uri, target as unknown as DialOutTarget);
        return { ok: true };
      },
    );

    const faultState = () => ({
      pending: core.faults.pending,
      dialinReady: core.faults.dialinReady,
      dialinReadyDelayMs: core.faults.dialinReadyDelayMs,
      rateLimit: core.faults.rateLimit,
    });
    app.get('/faults', { schema: { response: { 200: AnyObject } } }, async () => faultState());
    app.post('/faults', { schema: { body: FaultsUpdateSchema } }, async (req) => {
      try {
        core.faults.apply(req.body);
      } catch (err) {
        throw new ApiError(400, 'invalid-request-error', errorMessage(err));
      }
      return faultState();
    });
    app.delete('/faults', { schema: { response: { 200: AnyObject } } }, async () => {
      core.faults.clear();
      return faultState();
    });

    app.get('/rate-limits', { schema: { response: { 200: AnyObject } } }, async () => core.rateLimits.settings());
    app.put('/rate-limits', { schema: { body: RateLimitSettingsSchema } }, async (req) => {
      try {
        core.rateLimits.update(req.body);
      } catch (err) {
        throw new ApiError(400, 'invalid-request-error', errorMessage(err));
      }
      return core.rateLimits.settings();
    });
    app.get('/state', { schema: { response: { 200: AnyObject } } }, async () => core.snapshot(sockets()));
    app.get('/pinless-dialin', { schema: { response: { 200: AnyObject } } }, async () => ({ pinless_dialin: core.pinless.list() }));
    app.put('/pinless-dialin', { schema: { body: Type.Object({ pinless_dialin: Type.Array(AnyObject) }) } }, async (req) => {
      core.pinless.set(req.body.pinless_dialin);
      return { pinless_dialin: core.pinless.list() };
    });
    app.put(
      '/latencies',
      {
        schema: {
          body: Type.Object(Object.fromEntries(LATENCY_NAMES.map((k) => [k, Type.Optional(Type.Integer({ minimum: 0 }))])), {
            additionalProperties: false,
          }),
        },
      },
      async (req) => {
        core.latencies.set(req.body);
        return core.latencies.values;
      },
    );
  };
}
