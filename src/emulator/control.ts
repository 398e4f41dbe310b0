/** The emulator's control API under /_emulator (no auth; the emulator binds 127.0.0.1). */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { EmulatorCore, SocketCounts } from './core.js';
import { ApiError } from './errors.js';
import { checkScript, isCallerStep, type CallImpl } from './call.js';
import { LATENCY_NAMES } from './latencies.js';
import { RateLimitSettingsSchema } from './rate-limits.js';
import { FaultsUpdateSchema } from './fault-schema.js';
import { WITHHELD_FROM } from './dialin.js';
import type { CallerStep } from './types.js';
import { errorMessage } from '../core/errors.js';
import type { TypedApp as App } from './rest.js';
import { recordingDownloadRoute } from './recording-routes.js';

const AnyObject = Type.Object({}, { additionalProperties: true });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const Script = Type.Optional(Type.Array(AnyObject, { maxItems: 1000 }));

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

/** A script from a request body: checked (400 when it is not one), then typed. */
function scriptOf(steps: unknown[] | undefined): CallerStep[] | undefined {
  if (steps === undefined) return undefined;
  const problem = checkScript(steps);
  if (problem) throw new ApiError(400, 'invalid-request-error', problem);
  return steps.filter(isCallerStep);
}

const PlaceCallBody = Type.Object(
  {
    to: Type.String({ minLength: 1, maxLength: 512 }),
    from: Type.Optional(Type.String({ maxLength: 512 })),
    withheld: Type.Optional(Type.Union(Object.keys(WITHHELD_FROM).map((k) => Type.Literal(k)))),
    sipHeaders: Type.Optional(Type.Record(Type.String(), Type.String())),
    script: Script,
  },
  { additionalProperties: false },
);

const CallActionsBody = Type.Object(
  {
    press: Type.Optional(Type.String({ pattern: '^[0-9*#A-Da-d]+$' })),
    say: Type.Optional(Type.String({ minLength: 1 })),
    hangup: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** `/calls`: place a caller, list and read calls, act as the caller. */
function callRoutes(app: App, core: EmulatorCore): void {
  const getCall = (id: string): CallImpl => {
    const c = core.calls.get(id);
    if (!c) throw new ApiError(404, 'not-found', `call ${id} not found`);
    return c;
  };
  app.post('/calls', { schema: { body: PlaceCallBody } }, async (req) => {
    const script = scriptOf(req.body.script);
    const call = core.dialin.placeCall({
      to: req.body.to,
      ...(req.body.from !== undefined ? { from: req.body.from } : {}),
      ...(req.body.withheld !== undefined ? { withheld: req.body.withheld } : {}),
      ...(req.body.sipHeaders ? { sipHeaders: req.body.sipHeaders } : {}),
      ...(script ? { script } : {}),
    });
    return { id: call.id, callId: call.callId, state: call.state, ...(call.reason ? { reason: call.reason } : {}) };
  });
  app.get('/calls', { schema: { response: { 200: AnyObject } } }, async () => ({
    data: [...core.calls.values()].map((c) => callJson(c)),
  }));
  app.get('/calls/:id', { schema: { params: IdParams } }, async (req) => callJson(getCall(req.params.id)));
  app.post('/calls/:id/actions', { schema: { params: IdParams, body: CallActionsBody } }, async (req) => {
    const call = getCall(req.params.id);
    const b = req.body;
    if (call.state === 'ended') throw new ApiError(409, 'invalid-request-error', `call ${call.id} has ended`);
    if ((b.press !== undefined || b.say !== undefined) && call.state !== 'connected') {
      throw new ApiError(409, 'invalid-request-error', `call ${call.id} is not connected`);
    }
    if (b.say !== undefined) void call.say(b.say);
    if (b.press !== undefined) void call.press(b.press);
    if (b.hangup === true) call.hangup();
    return { ok: true, state: call.state };
  });
}

const DialOutTargetBody = Type.Object(
  {
    uri: Type.String({ minLength: 1, maxLength: 512 }),
    answer: Type.Union([
      Type.Literal('answer'),
      Type.Literal('busy'),
      Type.Literal('unreachable'),
      Type.Literal('no-answer'),
      Type.Literal('voicemail'),
    ]),
    answerAfterMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    greeting: Type.Optional(Type.String({ minLength: 1, maxLength: 2_000 })),
    beepHz: Type.Optional(Type.Integer({ minimum: 0, maximum: 4_000 })),
    recordMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    ringMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    script: Script,
  },
  { additionalProperties: false },
);

function dialOutRoutes(app: App, core: EmulatorCore): void {
  app.put('/dial-out-targets', { schema: { body: DialOutTargetBody } }, async (req) => {
    const script = scriptOf(req.body.script);
    const { uri, script: _script, ...target } = req.body;
    core.dialOut.setTarget(uri, { ...target, ...(script ? { script } : {}) });
    return { ok: true };
  });
}

/** Faults and Daily's rate limits. */
function faultRoutes(app: App, core: EmulatorCore): void {
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
}

const LatenciesBody = Type.Object(Object.fromEntries(LATENCY_NAMES.map((k) => [k, Type.Optional(Type.Integer({ minimum: 0 }))])), {
  additionalProperties: false,
});

/** State, the pinless configuration, latencies. */
function settingRoutes(app: App, core: EmulatorCore, sockets: () => SocketCounts): void {
  app.get('/state', { schema: { response: { 200: AnyObject } } }, async () => core.snapshot(sockets()));
  app.get('/pinless-dialin', { schema: { response: { 200: AnyObject } } }, async () => ({ pinless_dialin: core.pinless.list() }));
  app.put('/pinless-dialin', { schema: { body: Type.Object({ pinless_dialin: Type.Array(AnyObject) }) } }, async (req) => {
    core.pinless.set(req.body.pinless_dialin);
    return { pinless_dialin: core.pinless.list() };
  });
  app.put('/latencies', { schema: { body: LatenciesBody } }, async (req) => {
    core.latencies.set(req.body);
    return core.latencies.values;
  });
}

/** The control API for tools outside the process. Register with `{prefix: '/_emulator'}`. */
export function controlRoutes(core: EmulatorCore, sockets: () => SocketCounts) {
  return async function plugin(fastify: FastifyInstance): Promise<void> {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    callRoutes(app, core);
    dialOutRoutes(app, core);
    faultRoutes(app, core);
    settingRoutes(app, core, sockets);
    recordingDownloadRoute(fastify, core);
  };
}
