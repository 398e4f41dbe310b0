/**
 * Daily's REST API under /v1 (the subset patchbay needs, with Daily's error shapes); the emulator's
 * control API under /_emulator is control.ts.
 */
import { timingSafeEqual } from 'node:crypto';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { EmulatorCore } from './core.js';
import { ApiError, dailyErrorName } from './errors.js';
import { webhookRoutes } from './webhooks.js';
import { recordingRoutes } from './recording-routes.js';
import { isObj } from './model.js';
import type { StoredPinless } from './pinless.js';

type App = FastifyInstance;
/** A Fastify instance whose routes take TypeBox schemas. */
export type TypedApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

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

/**
 * Faults and rate limit first (they stand for Daily's edge), then the bearer key; answers held back
 * by `answerDelayMs` faults; the request log. Returns the guard, for the not-found handler too.
 */
function installGuard(app: TypedApp, core: EmulatorCore, apiKey: string) {
  // preValidation: after body parsing, so that the request log can name the callId.
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
  return guard;
}

/** Every /v1 request in the emulator's request log, once answered. */
function installRequestLog(app: TypedApp, core: EmulatorCore): void {
  // When a request arrived (Daily counts it then), on the same clock as callers' Date.now(): the
  // answer time minus Fastify's elapsed time could land a millisecond before the arrival.
  const arrivedAt = new WeakMap<FastifyRequest, number>();
  app.addHook('onRequest', async (req: FastifyRequest) => {
    arrivedAt.set(req, Date.now());
  });
  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    const body = req.body;
    core.logRequest({
      // The entry is written once the answer is sent.
      atMs: arrivedAt.get(req) ?? Date.now(),
      method: req.method,
      path: v1Path(req.url),
      status: reply.statusCode,
      answeredAtMs: Date.now(),
      ...(isObj(body) && typeof body.callId === 'string' ? { callId: body.callId } : {}),
    });
  });
}

/** The domain object (`GET/POST /`) and `/domain-dialin-config`. */
function domainRoutes(app: TypedApp, core: EmulatorCore): void {
  app.get('/', { schema: { response: { 200: AnyObject } } }, async () => core.domainJson());
  const DomainBody = Type.Object({ properties: Type.Optional(AnyObject) }, { additionalProperties: true });
  app.post('/', { schema: { body: DomainBody, response: { 200: AnyObject } } }, async (req) => {
    const props = isObj(req.body.properties) ? req.body.properties : {};
    for (const k of Object.keys(props)) {
      if (k !== 'pinless_dialin') throw new ApiError(400, 'invalid-request-error', `the emulator does not support domain property '${k}'`);
    }
    // Like Daily: the array replaces the whole pinless_dialin configuration.
    if (props.pinless_dialin !== undefined) {
      core.pinless.set(props.pinless_dialin);
      core.pinlessWebhook.probe(core.pinless.list());
    }
    return core.domainJson();
  });
  const Limit = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }, { additionalProperties: true });
  app.get('/domain-dialin-config', { schema: { querystring: Limit } }, async (req) => {
    const all = core.pinless.list().map((e) => core.pinless.configJson(e));
    const data = all.slice(0, req.query.limit ?? 100);
    return { total_count: all.length, data };
  });
  app.get('/domain-dialin-config/:id', { schema: { params: IdParams } }, async (req) => core.pinless.get(req.params.id));
  const probed = (entry: StoredPinless): Record<string, unknown> => {
    core.pinlessWebhook.probe([entry]);
    return core.pinless.configJson(entry);
  };
  app.post('/domain-dialin-config', { schema: { body: AnyObject } }, async (req) => probed(core.pinless.create(req.body)));
  app.put('/domain-dialin-config/:id', { schema: { params: IdParams, body: AnyObject } }, async (req) =>
    probed(core.pinless.update(req.params.id, req.body)),
  );
  app.delete('/domain-dialin-config/:id', { schema: { params: IdParams } }, async (req) => {
    core.pinless.delete(req.params.id);
    return { deleted: true, id: req.params.id };
  });
}

const RoomsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    ending_before: Type.Optional(Type.String()),
    starting_after: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

/** `POST /rooms`, `GET /rooms` and one room's `GET`, `POST`, `DELETE`. */
function roomRoutes(app: TypedApp, core: EmulatorCore): void {
  const createRoom = {
    schema: { body: Type.Union([AnyObject, Type.Null()]), response: { 200: AnyObject, 400: ErrorBody } },
    preValidation: async (req: FastifyRequest) => {
      if (req.body === undefined) req.body = {};
    },
  };
  app.post('/rooms', createRoom, async (req) => {
    await core.timers.sleep(core.latencies.values.roomCreateMs);
    return core.rooms.toJson(core.createRoom(req.body));
  });
  app.get('/rooms', { schema: { querystring: RoomsQuery } }, async (req) => {
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
  });
  app.get('/rooms/:name', { schema: { params: NameParams } }, async (req) => core.rooms.toJson(core.rooms.require(req.params.name)));
  app.post('/rooms/:name', { schema: { params: NameParams, body: Type.Union([AnyObject, Type.Null()]) } }, async (req) =>
    core.rooms.toJson(core.updateRoom(req.params.name, req.body)),
  );
  const Deleted = Type.Object({ deleted: Type.Boolean(), name: Type.String() });
  app.delete('/rooms/:name', { schema: { params: NameParams, response: { 200: Deleted } } }, async (req) => {
    await core.timers.sleep(core.latencies.values.roomDeleteMs);
    core.sessions.deleteRoom(req.params.name);
    return { deleted: true, name: req.params.name };
  });
}

const PresenceQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1 })),
    userId: Type.Optional(Type.String()),
    userName: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

/** `GET /rooms/:name/presence`: as of presenceLagMs ago (Daily's presence trails the room). */
function presenceRoute(app: TypedApp, core: EmulatorCore): void {
  app.get('/rooms/:name/presence', { schema: { params: NameParams, querystring: PresenceQuery } }, async (req) => {
    const room = core.rooms.require(req.params.name);
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
  });
}

const PinlessCallUpdateBody = Type.Object(
  {
    callId: Type.String({ minLength: 1, maxLength: 128 }),
    callDomain: Type.String({ minLength: 1, maxLength: 128 }),
    sipUri: Type.String({ minLength: 1, maxLength: 512 }),
  },
  { additionalProperties: true },
);

/** Meeting tokens and pinless dial-in's `pinlessCallUpdate`. */
function tokenAndDialinRoutes(app: TypedApp, core: EmulatorCore): void {
  app.post('/meeting-tokens', { schema: { body: AnyObject, response: { 200: Type.Object({ token: Type.String() }) } } }, async (req) => {
    await core.timers.sleep(core.latencies.values.tokenCreateMs);
    return { token: core.tokens.create(req.body) };
  });
  const TokenParams = Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }) });
  app.get('/meeting-tokens/:token', { schema: { params: TokenParams, response: { 200: AnyObject } } }, async (req) =>
    core.tokens.inspect(req.params.token),
  );
  app.post('/dialin/pinlessCallUpdate', { schema: { body: PinlessCallUpdateBody } }, async (req) => {
    await core.timers.sleep(core.latencies.values.pinlessUpdateMs);
    core.dialin.pinlessCallUpdate(req.body);
    // Daily's documented example answer.
    return { ok: 'true' };
  });
}

/** The Daily REST API. Register with `{prefix: '/v1'}`. */
export function dailyRoutes(core: EmulatorCore, apiKey: string) {
  return async function plugin(fastify: App): Promise<void> {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const guard = installGuard(app, core, apiKey);
    // Unknown /v1 routes: faults and auth first, like any other Daily route.
    app.setNotFoundHandler({ preValidation: guard }, (req, reply) =>
      sendError(reply, new ApiError(404, 'not-found', `no such endpoint: ${req.method} ${req.url.split('?')[0]}`)),
    );
    installRequestLog(app, core);
    domainRoutes(app, core);
    await app.register(webhookRoutes(core.webhooks));
    roomRoutes(app, core);
    presenceRoute(app, core);
    tokenAndDialinRoutes(app, core);
    recordingRoutes(app, core);
  };
}
