/**
 * Stored call records (docs/dashboard.md, docs/operations.md):
 *
 *   GET /calls?number=&bot=&outcome=&from=&to=&limit=&cursor=&format=
 *     number   last digits of the caller's or callee's number (1..15 digits; the last 4 when numbers are masked)
 *     bot      a bot name
 *     outcome  an outcome (src/core/outcome.ts, or `interrupted` / `replica_lost`)
 *     from,to  ISO 8601 times: calls received from (inclusive) … to (exclusive)
 *     limit    1..500, default 50
 *     cursor   the previous page's `nextCursor` (`before` is the older name of it)
 *     format   csv | json: the whole filter (up to 10 000 calls) as a download
 *   GET /calls/:id   one call with its timeline and event log (a live call as it is now); an outbound
 *                    call's id (POST /calls, routes/outbound.ts) shows its status and its attempts' records
 *
 * Newest first. Numbers are always shown masked, whatever the database holds. Needs DASHBOARD_TOKEN when it is set.
 */
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { RECORD_OUTCOMES, isRecordOutcome } from '../../core/outcome.js';
import { maskNumber } from '../../core/logger.js';
import { toCsv } from '../../records/csv.js';
import { recordingSummary, type RecordingSummary } from '../../records/recording.js';
import { MAX_LIST_LIMIT, type StoredCall } from '../../records/store.js';
import type { CallFilter } from '../../records/types.js';
import type { AppDeps } from '../deps.js';
import { dashboardAuth } from './dashboard-auth.js';
import { callsReadHook } from './outbound.js';

const DEFAULT_LIMIT = 50;
const EXPORT_MAX = 10_000;
const PARAMS = ['number', 'bot', 'outcome', 'from', 'to', 'limit', 'cursor', 'before', 'format'];
const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const StoredCallSchema = Type.Object({
  seq: Type.Integer(),
  id: Type.String(),
  callId: Type.String(),
  callDomain: Type.String(),
  from: Type.String(),
  to: Type.String(),
  bot: Type.String(),
  roomName: Type.String(),
  state: Type.String(),
  outcome: Nullable(Type.String()),
  detail: Nullable(Type.String()),
  receivedAtMs: Type.Integer(),
  endedAtMs: Nullable(Type.Integer()),
  durationMs: Type.Integer(),
  warmStart: Nullable(Type.Boolean()),
  workerPid: Nullable(Type.Integer()),
  replicaId: Type.String(),
  traceId: Nullable(Type.String()),
  timeline: Type.Record(Type.String(), Type.Number()),
  events: Type.Array(Type.Object({ kind: Type.String(), value: Type.String(), atMs: Type.Number() })),
  path: Nullable(Type.Union([Type.Literal('warm'), Type.Literal('cold')])),
  botVersion: Nullable(Type.String()),
  /** Turn latency (end of the caller's speech → first frame of the answer), from the event log (src/core/turn-timing.ts). */
  turnLatency: Type.Optional(Nullable(Type.Object({ turns: Type.Integer(), p50Ms: Type.Number(), p95Ms: Type.Number() }))),
  /** `outbound` for an attempt of an outbound call (its event log has `dialout` events). */
  direction: Type.Optional(Type.Union([Type.Literal('inbound'), Type.Literal('outbound')])),
  /** From the event log (src/records/recording.ts). */
  recording: Type.Optional(
    Type.Object({
      state: Type.String(),
      mode: Nullable(Type.String()),
      ids: Type.Array(Type.String()),
      segments: Type.Array(Type.Object({ startMs: Type.Number(), endMs: Nullable(Type.Number()) })),
      errors: Type.Array(Type.String()),
      pauses: Type.Array(Type.Object({ startMs: Type.Number(), endMs: Nullable(Type.Number()) })),
    }),
  ),
});

/** An outbound call as GET /calls/:id shows it (src/admission/outbound.ts `OutboundView`). */
const OutboundViewSchema = Type.Object({
  id: Type.String(),
  direction: Type.Literal('outbound'),
  status: Type.String(),
  result: Nullable(Type.String()),
  outcome: Nullable(Type.String()),
  detail: Nullable(Type.String()),
  to: Type.String(),
  from: Nullable(Type.String()),
  bot: Type.String(),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  attempts: Type.Integer(),
  callIds: Type.Array(Type.String()),
  createdAtMs: Type.Number(),
  notBeforeMs: Nullable(Type.Number()),
  nextAttemptAtMs: Nullable(Type.Number()),
  history: Type.Array(Type.Object({ status: Type.String(), atMs: Type.Number(), attempt: Type.Integer() })),
});

/** A stored call as shown to people: numbers masked. */
export function showCall(c: StoredCall): StoredCall & { direction: 'inbound' | 'outbound'; recording: RecordingSummary } {
  const direction = c.events.some((e) => e.kind === 'dialout') ? 'outbound' : 'inbound';
  return { ...c, from: maskNumber(c.from) ?? '', to: maskNumber(c.to) ?? '', direction, recording: recordingSummary(c.events) };
}

const Query = Type.Object(
  {
    number: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
    bot: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    outcome: Type.Optional(Type.String({ maxLength: 64 })),
    from: Type.Optional(Type.String({ maxLength: 40 })),
    to: Type.Optional(Type.String({ maxLength: 40 })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$' })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
    before: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
    format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('json')])),
    token: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);

type ValidationError = Error & { validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }> };

function validationMessage(err: unknown): string {
  const first = (err as ValidationError).validation?.[0];
  const extra = first?.params?.additionalProperty;
  const field = extra ? String(extra) : (first?.instancePath ?? '').replace(/^\//, '');
  return extra
    ? `unknown query parameter "${field}" (allowed: ${PARAMS.join(', ')})`
    : `query parameter "${field}" ${first?.message ?? 'is invalid'}`;
}

/** An ISO 8601 time (a date, or a date and time) → epoch ms. */
export function parseTime(s: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s)) return undefined;
  const ms = Date.parse(s);
  return Number.isFinite(ms) ? ms : undefined;
}

type ListQuery = Static<typeof Query>;
type Store = NonNullable<AppDeps['records']>;
interface ListParams {
  limit: number;
  cursor: number | undefined;
  outcome: CallFilter['outcome'] | undefined;
  fromMs: number | undefined;
  toMs: number | undefined;
}

/** The ranges the schema cannot check: the parsed parameters, or why they are refused. */
function parseListQuery(q: ListQuery): ListParams | string {
  const limit = q.limit === undefined ? DEFAULT_LIMIT : Number(q.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) return `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`;
  const outcome = q.outcome;
  if (outcome !== undefined && !isRecordOutcome(outcome)) {
    return `outcome must be one of: ${RECORD_OUTCOMES.join(', ')}`;
  }
  const cursorText = q.cursor ?? q.before;
  const cursor = cursorText === undefined ? undefined : Number(cursorText);
  if (cursor !== undefined && cursor < 1) return 'before must be a positive integer (a seq from a previous page)';
  const fromMs = q.from === undefined ? undefined : parseTime(q.from);
  if (q.from !== undefined && fromMs === undefined) return 'from must be an ISO 8601 time, e.g. 2026-12-01T17:00:00Z';
  const toMs = q.to === undefined ? undefined : parseTime(q.to);
  if (q.to !== undefined && toMs === undefined) return 'to must be an ISO 8601 time, e.g. 2026-12-01T18:00:00Z';
  return { limit, cursor, outcome, fromMs, toMs };
}

function listFilter(q: ListQuery, p: ListParams, store: Store): CallFilter {
  const { outcome, fromMs, toMs } = p;
  return {
    // Masked numbers keep their last 4 digits: a longer search matches on those.
    ...(q.number !== undefined ? { number: store.storePii ? q.number : q.number.slice(-4) } : {}),
    ...(q.bot !== undefined ? { bot: q.bot } : {}),
    ...(outcome !== undefined ? { outcome } : {}),
    ...(fromMs !== undefined ? { fromMs } : {}),
    ...(toMs !== undefined ? { toMs } : {}),
  };
}

/** The whole filter (up to EXPORT_MAX calls) as a CSV or JSON download. */
async function sendExport(reply: FastifyReply, store: Store, filter: CallFilter, cursor: number | undefined, format: 'csv' | 'json') {
  const all: StoredCall[] = [];
  let next = cursor;
  while (all.length < EXPORT_MAX) {
    const page = await store.query(filter, { limit: MAX_LIST_LIMIT, ...(next !== undefined ? { cursor: next } : {}) });
    all.push(...page.map(showCall));
    if (page.length < MAX_LIST_LIMIT) break;
    next = page.at(-1)!.seq;
  }
  const name = `calls-${new Date().toISOString().replace(/[:.]/g, '-')}.${format}`;
  reply.headers({
    'content-disposition': `attachment; filename="${name}"`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  if (all.length >= EXPORT_MAX) reply.header('x-export-truncated', String(EXPORT_MAX));
  // Sent as text: the 200 schema above is the page's, not the export's.
  const body = format === 'csv' ? toCsv(all) : JSON.stringify({ calls: all });
  return reply
    .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
    .serializer((p: unknown) => p as string)
    .send(body);
}

const refuse = (req: FastifyRequest, reply: FastifyReply, message: string) => {
  req.log.warn({ path: req.routeOptions.url, status: 400, err: message }, 'request refused');
  return reply.code(400).send({ error: 'invalid_query', message });
};
const off = (reply: FastifyReply) =>
  reply.code(404).send({ error: 'records_off', message: 'call records are off (CALL_RECORDS_PATH=off and no DATABASE_URL)' });

type RoutesApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** GET /calls: a page of records, or the whole filter as a download. */
function listCallsRoute(app: RoutesApp, deps: AppDeps, auth: Pick<ReturnType<typeof dashboardAuth>, 'hook'>): void {
  app.get(
    '/calls',
    {
      // Query strings are strings (the app does not coerce types): shapes here, ranges below.
      schema: {
        querystring: Query,
        response: {
          200: Type.Object({
            calls: Type.Array(StoredCallSchema),
            nextCursor: Nullable(Type.String()),
            nextBefore: Nullable(Type.Integer()),
          }),
          400: ErrorBody,
          401: ErrorBody,
          404: ErrorBody,
        },
      },
      attachValidation: true,
      onRequest: auth.hook,
    },
    async (req, reply) => {
      if (req.validationError) return refuse(req, reply, validationMessage(req.validationError));
      const q = req.query;
      const p = parseListQuery(q);
      if (typeof p === 'string') return refuse(req, reply, p);
      const store = deps.records;
      if (!store) return off(reply);
      const filter = listFilter(q, p, store);
      if (q.format !== undefined) return sendExport(reply, store, filter, p.cursor, q.format);
      const { limit, cursor } = p;
      const calls = (await store.query(filter, { limit, ...(cursor !== undefined ? { cursor } : {}) })).map(showCall);
      const last = calls.at(-1);
      const more = calls.length === limit && last ? last.seq : null;
      return { calls, nextCursor: more === null ? null : String(more), nextBefore: more };
    },
  );
}

/** GET /calls/:id: one call with its timeline and event log. */
function callByIdRoute(app: RoutesApp, deps: AppDeps, auth: Pick<ReturnType<typeof dashboardAuth>, 'hook'>): void {
  app.get(
    '/calls/:id',
    {
      schema: {
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' }) }),
        querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 512 })) }, { additionalProperties: false }),
        response: {
          200: Type.Union([
            Type.Object({ call: StoredCallSchema, live: Type.Boolean() }),
            Type.Object({ call: OutboundViewSchema, live: Type.Boolean(), attempts: Type.Array(StoredCallSchema) }),
          ]),
          400: ErrorBody,
          401: ErrorBody,
          404: ErrorBody,
        },
      },
      attachValidation: true,
      onRequest: auth.hook,
    },
    async (req, reply) => {
      if (req.validationError) return refuse(req, reply, `not a call id: ${validationMessage(req.validationError)}`);
      const outbound = deps.outbound?.get(req.params.id);
      if (outbound) {
        const stored = deps.records ? await Promise.all(outbound.callIds.map((id) => deps.records!.get(id))) : [];
        const attempts = stored.filter((c): c is StoredCall => c !== undefined).map(showCall);
        return { call: { ...outbound, to: maskNumber(outbound.to) ?? '' }, live: outbound.status !== 'ended', attempts };
      }
      const store = deps.records;
      if (!store) return off(reply);
      const call = await store.get(req.params.id);
      if (!call) return reply.code(404).send({ error: 'not_found', message: `no call record ${req.params.id}` });
      return { call: showCall(call), live: call.endedAtMs === null };
    },
  );
}

export const callsRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const dashboard = dashboardAuth(deps.config);
  // CALLS_API_TOKEN opens the records too (outbound calls' status); else the dashboard's rules.
  const auth = { hook: callsReadHook(deps.config, (req, reply) => dashboard.hook(req, reply)) };
  listCallsRoute(app, deps, auth);
  callByIdRoute(app, deps, auth);
};
