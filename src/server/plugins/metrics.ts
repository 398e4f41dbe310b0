/**
 * Prometheus metrics (prom-client) and `GET /metrics`.
 *
 * Each app gets its own Registry, so several apps can live in one process (tests). Series are
 * fed from the dispatcher's `transition` / `changed` events (relayed from each call), the pool's `onWorkerReady`
 * hook and the /dialin route's reply time; gauges are read at scrape time.
 *
 * Durations are in seconds (Prometheus' base unit), unlike the `…Ms` fields in code and logs.
 */
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TimelineStage } from '../../core/timeline.js';
import type { Call, CallRecord, CallTransition } from '../../call/call.js';
import { OUTCOMES } from '../../core/outcome.js';
import type { AppDeps } from '../deps.js';
import { stageDurations } from '../../core/turn-timing.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's metrics registry. */
    metrics: Registry;
  }
}

/** Seconds; from a fast local ack up to Daily's webhook patience. */
const ACK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds; call set-up steps (room, queue, join, SIP registration). */
const SETUP_BUCKETS = [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30];
/** Seconds; fork → ready of a worker (module loading, browser launch). */
const WORKER_START_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20];

export interface PatchbayMetrics {
  registry: Registry;
  callsTotal: Counter<'outcome'>;
  callStartsTotal: Counter<'start'>;
  webhookAck: Histogram<'status'>;
  /** Dial-in webhooks answered without admitting the call, by reason (busy reasons, room_refused, missing_fields). */
  dialinRefused: Counter<'reason'>;
  timeToDialinReady: Histogram;
  timeToPinlessUpdate: Histogram;
  holdAdded: Histogram;
  workerStart: Histogram;
  callPathTotal: Counter<'path'>;
  firstAudio: Histogram<'path'>;
  /** Feeds a call record (idempotent per record and stage). */
  observeCall(record: CallRecord): void;
}

type MetricsSources = {
  dispatcher: AppDeps['dispatcher'];
  pool: AppDeps['pool'];
  version: string;
  records?: AppDeps['records'];
};

/** The per-call outcome and start counters (every label value from zero). */
function registerCallCounters(registry: Registry): Pick<PatchbayMetrics, 'callsTotal' | 'callStartsTotal'> {
  const callsTotal = new Counter({
    name: 'patchbay_calls_total',
    help: 'Admitted calls that ended, by outcome (exactly one per call).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  // Every outcome exists from the start, so rates and alerts see zeros rather than gaps.
  for (const o of OUTCOMES) callsTotal.inc({ outcome: o }, 0);

  const callStartsTotal = new Counter({
    name: 'patchbay_call_starts_total',
    help: 'Calls handed to a worker, by whether the worker was already warm or had to be cold-started.',
    labelNames: ['start'] as const,
    registers: [registry],
  });
  callStartsTotal.inc({ start: 'warm' }, 0);
  callStartsTotal.inc({ start: 'cold' }, 0);

  return { callsTotal, callStartsTotal };
}

/** Slots, queue and workers, read at scrape time. */
function registerLoadGauges(registry: Registry, read: MetricsSources): void {
  new Gauge({
    name: 'patchbay_active_bots',
    help: 'Calls holding a bot slot right now (worker assigned or being assigned).',
    registers: [registry],
    collect() {
      this.set(read.dispatcher.stats().active);
    },
  });
  new Gauge({
    name: 'patchbay_queued_calls',
    help: 'Admitted calls waiting for a free bot slot.',
    registers: [registry],
    collect() {
      this.set(read.dispatcher.stats().queued);
    },
  });
  new Gauge({
    name: 'patchbay_idle_workers',
    help: 'Pre-started (warm) workers ready to take a call.',
    registers: [registry],
    collect() {
      this.set(read.pool.stats().idle);
    },
  });
  new Gauge({
    name: 'patchbay_starting_workers',
    help: 'Workers being started (not ready yet).',
    registers: [registry],
    collect() {
      this.set(read.pool.stats().starting);
    },
  });
}

/** Warm rooms by state and the time their bots sat idle. */
function registerWarmSlotSeries(registry: Registry, read: MetricsSources): void {
  new Gauge({
    name: 'patchbay_warm_slots',
    help: 'Warm rooms (a bot already in a SIP dial-in room, its endpoint ready) by state: ready, in_use (taken by a live call), refilling.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const w = read.dispatcher.warmSlots?.stats();
      this.set({ state: 'ready' }, w?.ready ?? 0);
      this.set({ state: 'in_use' }, w?.inUse ?? 0);
      this.set({ state: 'refilling' }, w?.refilling ?? 0);
    },
  });
  new Gauge({
    name: 'patchbay_room_deletions_pending',
    help: 'Rooms queued for deletion (Daily’s DELETE class, ≈1.7/s per domain); bounded: past the bound the oldest is left to its exp.',
    registers: [registry],
    collect() {
      this.set(read.dispatcher.roomStats().backlog);
    },
  });
  let leftReported = 0;
  new Counter({
    name: 'patchbay_rooms_left_to_expire_total',
    help: 'Rooms not deleted because the deletion backlog was full: left to expire by their exp (Daily collects expired rooms).',
    registers: [registry],
    collect() {
      const n = read.dispatcher.roomStats().dropped;
      if (n > leftReported) this.inc(n - leftReported);
      leftReported = Math.max(leftReported, n);
    },
  });
  let idleReportedMs = 0;
  new Counter({
    name: 'patchbay_warm_slot_idle_seconds_total',
    help: 'Time warm bots sat in their rooms waiting for a call (Daily bills it as participant time).',
    registers: [registry],
    collect() {
      const ms = read.dispatcher.warmSlots?.idleMs() ?? 0;
      if (ms > idleReportedMs) this.inc((ms - idleReportedMs) / 1000);
      idleReportedMs = Math.max(idleReportedMs, ms);
    },
  });
}

/** Draining, the call-record writer's queue and drops, and the version. */
function registerServiceSeries(registry: Registry, read: MetricsSources): void {
  new Gauge({
    name: 'patchbay_draining',
    help: '1 while this replica drains (refuses new calls), else 0.',
    registers: [registry],
    collect() {
      this.set(read.dispatcher.isDraining ? 1 : 0);
    },
  });
  const records = read.records;
  if (records) {
    new Gauge({
      name: 'patchbay_records_queue_depth',
      help: 'Calls whose record changes wait in memory to be written (grows while the database is slow or down).',
      registers: [registry],
      collect() {
        this.set(records.stats().queueDepth);
      },
    });
    let dropped = 0;
    new Counter({
      name: 'patchbay_records_dropped_total',
      help: 'Call records dropped because the memory queue was full (the database was down for too long).',
      registers: [registry],
      collect() {
        const now = records.stats().dropped;
        if (now > dropped) this.inc(now - dropped);
        dropped = now;
      },
    });
  }
  new Gauge({
    name: 'patchbay_info',
    help: 'Always 1; the version as a label.',
    labelNames: ['version'] as const,
    registers: [registry],
  }).set({ version: read.version }, 1);
}

type TimingSeries = Pick<
  PatchbayMetrics,
  | 'dialinRefused'
  | 'webhookAck'
  | 'timeToDialinReady'
  | 'timeToPinlessUpdate'
  | 'holdAdded'
  | 'workerStart'
  | 'callPathTotal'
  | 'firstAudio'
>;

/** The webhook's answers and the call set-up histograms. */
function registerTimingSeries(registry: Registry): TimingSeries {
  const dialinRefused = new Counter({
    name: 'patchbay_dialin_refused_total',
    help: 'Dial-in webhooks answered without admitting the call, by reason: draining, queue_full, overloaded, room_failed (503), room_refused (502), missing_fields (400)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const webhookAck = new Histogram({
    name: 'patchbay_webhook_ack_seconds',
    help: 'Time to answer the pinless dial-in webhook (POST /dialin), by HTTP status.',
    labelNames: ['status'] as const,
    buckets: ACK_BUCKETS,
    registers: [registry],
  });
  const timeToDialinReady = new Histogram({
    name: 'patchbay_time_to_dialin_ready_seconds',
    help: 'Webhook received → dialin-ready seen by the bot (room, queue, worker, join, SIP registration).',
    buckets: SETUP_BUCKETS,
    registers: [registry],
  });
  const timeToPinlessUpdate = new Histogram({
    name: 'patchbay_time_to_pinless_update_seconds',
    help: 'Webhook received → pinlessCallUpdate accepted by Daily (retries included).',
    buckets: SETUP_BUCKETS,
    registers: [registry],
  });
  const holdAdded = new Histogram({
    name: 'patchbay_hold_added_seconds',
    help: "Hold time added by this service: webhook received → pinlessCallUpdate sent (the log line's holdAddedMs).",
    buckets: SETUP_BUCKETS,
    registers: [registry],
  });
  const workerStart = new Histogram({
    name: 'patchbay_worker_start_seconds',
    help: 'Worker start time: fork → ready (bot code loaded, call client prepared).',
    buckets: WORKER_START_BUCKETS,
    registers: [registry],
  });

  const callPathTotal = new Counter({
    name: 'patchbay_call_path_total',
    help: 'Admitted calls by path: warm (a warm room, one pinlessCallUpdate) or cold (a room per call).',
    labelNames: ['path'] as const,
    registers: [registry],
  });
  callPathTotal.inc({ path: 'warm' }, 0);
  callPathTotal.inc({ path: 'cold' }, 0);
  const firstAudio = new Histogram({
    name: 'patchbay_first_audio_seconds',
    help: 'dialin-connected → the first bot audio sent (greeting or first prompt), by path.',
    labelNames: ['path'] as const,
    buckets: ACK_BUCKETS,
    registers: [registry],
  });

  return { dialinRefused, webhookAck, timeToDialinReady, timeToPinlessUpdate, holdAdded, workerStart, callPathTotal, firstAudio };
}

/** `observeCall`: feeds a record's path, first audio, start, set-up spans and outcome, each once. */
function callObserver(series: TimingSeries & Pick<PatchbayMetrics, 'callsTotal' | 'callStartsTotal'>): (record: CallRecord) => void {
  const { callsTotal, callStartsTotal, timeToDialinReady, timeToPinlessUpdate, holdAdded, callPathTotal, firstAudio } = series;
  const seen = new WeakMap<CallRecord, Set<string>>();
  const once = (record: CallRecord, key: string): boolean => {
    let s = seen.get(record);
    if (!s) seen.set(record, (s = new Set()));
    if (s.has(key)) return false;
    s.add(key);
    return true;
  };
  const span = (record: CallRecord, from: TimelineStage, to: TimelineStage, h: Histogram): void => {
    const a = record.timeline[from];
    const b = record.timeline[to];
    if (a === undefined || b === undefined || !once(record, to)) return;
    h.observe(Math.max(0, b - a) / 1000);
  };

  return (record) => {
    if (record.path && once(record, 'path')) callPathTotal.inc({ path: record.path });
    const { connected, first_audio } = record.timeline;
    if (connected !== undefined && first_audio !== undefined && once(record, 'first_audio')) {
      firstAudio.observe({ path: record.path ?? 'cold' }, Math.max(0, first_audio - connected) / 1000);
    }
    if (record.timeline.worker_assigned !== undefined && record.warmStart !== undefined && once(record, 'start')) {
      callStartsTotal.inc({ start: record.warmStart ? 'warm' : 'cold' });
    }
    span(record, 'received', 'dialin_ready', timeToDialinReady);
    span(record, 'received', 'forwarded', timeToPinlessUpdate);
    span(record, 'received', 'forward_sent', holdAdded);
    if (record.state === 'ended' && record.outcome && once(record, 'outcome')) {
      callsTotal.inc({ outcome: record.outcome });
    }
  };
}

/** Distinct step names counted per bot; beyond, a bot's new names are counted as `_other` (label cardinality). */
export const MAX_STEP_LABELS_PER_BOT = 100;

/** `patchbay_bot_step_total{bot,step}`: calls that reached each step (once per call, at its first entry). */
function stepObserver(registry: Registry): (record: CallRecord) => void {
  const steps = new Counter({
    name: 'patchbay_bot_step_total',
    help: 'Calls that reached a step of their bot (call.step(); once per call and step). Funnels by version: GET /analytics/funnel.',
    labelNames: ['bot', 'step'] as const,
    registers: [registry],
  });
  const names = new Map<string, Set<string>>();
  const read = new WeakMap<CallRecord, { events: number; steps: Set<string> }>();
  const label = (bot: string, step: string): string => {
    let known = names.get(bot);
    if (!known) names.set(bot, (known = new Set()));
    if (known.has(step)) return step;
    if (known.size >= MAX_STEP_LABELS_PER_BOT) return '_other';
    known.add(step);
    return step;
  };
  return (record) => {
    let r = read.get(record);
    if (!r) read.set(record, (r = { events: 0, steps: new Set() }));
    for (const e of record.botEvents.slice(r.events)) {
      if (e.kind !== 'step' || r.steps.has(e.value)) continue;
      r.steps.add(e.value);
      steps.inc({ bot: record.bot, step: label(record.bot, e.value) });
    }
    r.events = record.botEvents.length;
  };
}

/** Seconds; one stage of a conversational turn, or the whole turn (voice-to-voice: 0.5–1.5 s is good). */
const TURN_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10];

/**
 * `patchbay_turn_latency_seconds{stage,bot}`: per timed turn (src/core/turn-timing.ts), each stage's
 * own time (since the stage before it: `transcript`, `llmFirstToken`, `ttsFirstAudio`,
 * `modelFirstAudio`, `firstFrameSent`) and `total` (first stage → first frame sent).
 */
function turnObserver(registry: Registry): (record: CallRecord) => void {
  const h = new Histogram({
    name: 'patchbay_turn_latency_seconds',
    help: "Conversational turns: each stage's time since the stage before it (the caller's end of speech → transcript → LLM first token → first TTS audio → first frame sent; speech-to-speech: model first audio), and `total`, by bot.",
    labelNames: ['stage', 'bot'] as const,
    buckets: TURN_BUCKETS,
    registers: [registry],
  });
  const seen = new WeakMap<CallRecord, number>();
  return (record) => {
    const turns = record.turns ?? [];
    for (const t of turns.slice(seen.get(record) ?? 0)) {
      for (const [stage, ms] of stageDurations(t.stages)) h.observe({ stage, bot: record.bot }, ms / 1000);
      h.observe({ stage: 'total', bot: record.bot }, t.totalMs / 1000);
    }
    seen.set(record, turns.length);
  };
}

/** Builds the registry and its series. `read` supplies the gauges at scrape time. */
export function createMetrics(read: MetricsSources): PatchbayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const calls = registerCallCounters(registry);
  registerLoadGauges(registry, read);
  registerWarmSlotSeries(registry, read);
  registerServiceSeries(registry, read);
  const timing = registerTimingSeries(registry);
  const series = { ...calls, ...timing };
  const observeCall = callObserver(series);
  const observeSteps = stepObserver(registry);
  const observeTurns = turnObserver(registry);
  return {
    registry,
    ...series,
    observeCall: (record) => {
      observeCall(record);
      observeSteps(record);
      observeTurns(record);
    },
  };
}

const metricsPluginImpl: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const m = createMetrics({ dispatcher: deps.dispatcher, pool: deps.pool, version: deps.version, records: deps.records });
  app.decorate('metrics', m.registry);

  const onChanged = (c: Call) => m.observeCall(c.record);
  const onTransition = (t: CallTransition) => m.observeCall(t.call.record);
  deps.dispatcher.on('changed', onChanged);
  deps.dispatcher.on('transition', onTransition);
  const previousReady = deps.pool.onWorkerReady;
  deps.pool.onWorkerReady = (w, ms) => {
    previousReady?.(w, ms);
    m.workerStart.observe(Math.max(0, ms) / 1000);
  };
  app.addHook('onClose', async () => {
    deps.dispatcher.off('changed', onChanged);
    deps.dispatcher.off('transition', onTransition);
    deps.pool.onWorkerReady = previousReady;
  });

  // The webhook's ack time, measured by Fastify from the request's arrival to the reply's end.
  app.addHook('onResponse', async (req, reply) => {
    if (req.routeOptions.url !== '/dialin' || req.method !== 'POST') return;
    m.webhookAck.observe({ status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (req.dialinRefusal !== undefined) m.dialinRefused.inc({ reason: req.dialinRefusal });
  });

  app.get('/metrics', { logLevel: 'warn' }, async (_req, reply) => {
    const body = await m.registry.metrics();
    return reply.header('content-type', m.registry.contentType).send(body);
  });
};

/** Registers `GET /metrics` and the hooks on the root app (not encapsulated: it sees /dialin). */
export const metricsPlugin = fp(metricsPluginImpl, { name: 'patchbay-metrics', fastify: '5.x' });
