/**
 * Wires one replica together: the Daily REST client (or the embedded emulator), the worker pool,
 * the dispatcher and the Fastify app. Used by server.ts and by the tests, so both run the same thing.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../core/config.js';
import type { DailyRestClient, RestRateLimit } from '../daily/rest.js';
import { createRoomService, type RoomService } from '../daily/room-service.js';
import { DOMAIN_EVENT_TYPES } from '../daily/webhook-events.js';
import type { BrowserHost } from '../daily/browser/host.js';
import { Dispatcher } from '../admission/dispatcher.js';
import { OutboundCalls, type OutboundStatusHook } from '../admission/outbound.js';
import { OutboundJournal, type JournalEntry } from '../admission/outbound-journal.js';
import { resolveBotFile } from '../core/bot-files.js';
import { WorkerPool } from '../workers/parent/pool.js';
import { WarmSlots } from '../workers/parent/warm-slots.js';
import { Reconciler } from '../call/reconcile.js';
import { AdmittedLog } from '../admission/admitted-log.js';
import { AdmissionBudget } from '../admission/budget.js';
import { sweepLeftovers, takeReplicaLock } from '../daily/leftovers.js';
import { loadRoutes, type LoadedRoutes, type Route } from '../admission/router.js';
import type { Emulator } from '../emulator/server.js';
import type { Logger } from '../core/logger.js';
import { recordDispatcherCalls } from '../records/adapter.js';
import { openConfiguredRecords } from '../records/open.js';
import type { RecordStore } from '../records/store.js';
import { buildApp } from '../server/app.js';
import type { FleetAdmission } from '../fleet/admission.js';
import { LocalRateLimiter, parseRateLimits, rateClassOf } from '../daily/rate-limit.js';
import type { CallAssignment } from '../workers/protocol.js';
import { errorMessage } from '../core/errors.js';
import { dailyAccess, dailyClient, sharedBrowsers, workerInit } from './parts.js';
import { startRecordingRetention } from './recording-retention.js';
import { wireCallbacks, type CallbackParts } from './callbacks.js';
import { orphanDirOf, scanOrphans } from '../workers/orphans.js';
import { keepOpenIds, OrphanAdoption, type OrphanScan } from '../admission/orphans.js';
import type { ForwardFn } from '../workers/parent/fallback.js';
import { BotReloader } from '../admission/reload.js';
import { reloadControl, type ReloadControl } from './reload.js';

export interface Runtime {
  config: Config;
  logger: Logger;
  app: FastifyInstance;
  dispatcher: Dispatcher;
  /** Outbound calls (POST /calls, callbacks); undefined when CALLS_API_TOKEN is unset and CALLBACK_OFFER off. */
  outbound: OutboundCalls | undefined;
  /** Callbacks instead of hold (CALLBACK_OFFER=true). */
  callbacks: CallbackParts | undefined;
  /** Daily's domain webhooks → calls. */
  reconciler: Reconciler;
  /** Rooms and bot tokens for calls. */
  rooms: RoomService;
  pool: WorkerPool;
  /** CALL_CLIENT=daily with BROWSER_LAYOUT=shared: the supervised browsers the workers' pages live in. */
  browsers: BrowserHost | undefined;
  /** Warm rooms; undefined when WARM_ROOMS=0. */
  warm: WarmSlots | undefined;
  daily: DailyRestClient;
  /** The embedded emulator, when no DAILY_API_KEY is set. */
  emulator: Emulator | undefined;
  pinlessSecrets: string[];
  /** Call records (CALL_RECORDS_PATH); undefined when off. Closed by shutdown(). */
  records: RecordStore | undefined;
  /** The secrets that verify domain webhooks (POST /webhooks/daily). */
  webhookSecrets: string[];
  /** POST /admin/reload and SIGHUP: routes and bots again, without a restart (src/app/reload.ts). */
  reloads: ReloadControl;
  /** Base URL once listening. */
  url: string;
  /** The start-up sweep of this replica's leftover rooms (src/daily/leftovers.ts), when it runs. */
  leftovers: Promise<{ listed: number; leftovers: number }> | undefined;
  listen(): Promise<string>;
  /** Readiness off, live calls finish (up to timeoutMs), then everything stops. */
  shutdown(timeoutMs: number): Promise<void>;
}

export const version: string =
  readVersion(new URL('../../package.json', import.meta.url)) ??
  // compiled layout
  readVersion(new URL('../../../package.json', import.meta.url)) ??
  '0.0.0';

/** `version` of a package.json; undefined when the file cannot be read or has none. */
function readVersion(file: URL): string | undefined {
  try {
    const pkg: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' && pkg.version
      ? pkg.version
      : undefined;
  } catch {
    return undefined;
  }
}

export interface RuntimeOptions {
  /** Use this emulator (and its API key) instead of starting one: tests share one emulator with the app. */
  emulator?: { instance: Emulator; apiKey: string };
  route?: Route;
  /** Extra bots to load in idle workers. */
  preloadBots?: string[];
  /**
   * Register POST /webhooks/daily as a domain webhook in the emulator once listening (as
   * `npx patchbay webhooks create` does against Daily). Default: only for an emulator this runtime started.
   */
  registerDomainWebhook?: boolean;
}

export async function createRuntime(config: Config, logger: Logger, opts: RuntimeOptions = {}): Promise<Runtime> {
  const routes = loadStartupRoutes(config, logger, opts);
  // Calls the last process left to its workers (issue 21, item 5): their records stay open for their real outcome.
  const orphanScan = scanOrphans(orphanDirOf(config.resilience.admittedPath));
  // Call records open before anything starts: a corrupt or unwritable file is a start-up error naming it.
  const records = await openConfiguredRecords(config, logger, keepOpenIds(orphanScan));
  const access = await dailyAccess(config, logger, opts);
  // Fleet mode (REDIS_URL): the fleet layer is loaded only then; Daily's rate limits are shared through it.
  const fleetMod = config.fleet ? await import('../fleet/index.js') : undefined;
  const fleet = fleetMod && config.fleet ? newFleet(fleetMod, config, logger) : undefined;
  const rateLimit = rateLimitOf(config, fleetMod, fleet);
  const daily = dailyClient(config, access, rateLimit);
  const init = workerInit(config, logger, access, [...(routes?.bots ?? [config.bots.defaultBot]), ...(opts.preloadBots ?? [])]);
  const browsers = sharedBrowsers(config, logger);
  const pool = new WorkerPool({
    ...(browsers ? { leaseBrowser: () => browsers.lease() } : {}),
    init,
    idle: config.workers.idle,
    refillDeferMaxMs: config.workers.refillDeferMaxMs,
    logger: logger.child({ component: 'pool' }),
    // SupervisionOptions is the subset of config.workers the supervisor reads.
    supervision: { ...config.workers, nice: config.resilience.workerNice, rateLimit },
  });
  const startedAtMs = Date.now();
  const admission = await newAdmission(config, logger, { daily, pool, routes, route: opts.route, fleet });
  const { dispatcher, reconciler, rooms, reloads } = admission;
  // Written off the call path (the store queues; a writer flushes batches).
  const unrecord = records ? recordDispatcherCalls(records, dispatcher) : undefined;
  const fleetAdmission = fleet ? await newFleetAdmission({ config, logger, dispatcher, reconciler, rooms, fleet }, admission) : undefined;
  const app = await buildApp({
    outbound: admission.outbound,
    config,
    logger,
    dispatcher,
    reconciler,
    pool,
    pinlessSecrets: access.pinlessSecrets,
    webhookSecrets: access.webhookSecrets,
    version,
    records,
    fleet: fleetAdmission,
    daily,
    reloads,
  });
  if (fleetMod && fleet) fleetMod.registerFleetMetrics(app.metrics, fleet);
  const rt: Runtime = {
    config,
    logger,
    app,
    ...admission,
    callbacks: wireCallbacks({ config, logger, admission, pool, daily, records, route: admission.route }, fleetMod, fleet),
    pool,
    browsers,
    daily,
    emulator: access.emulator,
    pinlessSecrets: access.pinlessSecrets,
    webhookSecrets: access.webhookSecrets,
    records,
    url: '',
    leftovers: undefined,
    listen: () => listen(rt, lifecycle),
    shutdown: (timeoutMs) => shutdown(rt, lifecycle, timeoutMs),
  };
  const lifecycle: Lifecycle = {
    fleet,
    fleetAdmission,
    ownEmulator: access.ownEmulator,
    registerDomainWebhook: opts.registerDomainWebhook ?? access.ownEmulator,
    startedAtMs,
    sweepStop: new AbortController(),
    unrecord,
    orphans: config.resilience.admittedPath ? { dir: orphanDirOf(config.resilience.admittedPath), scan: orphanScan } : undefined,
    claimRecord: fleetMod && fleet ? (callId: string) => fleetMod.claimRecord(fleet, callId) : undefined,
    adoption: undefined,
  };
  return rt;
}

/**
 * Fleet mode's admission (loaded only then): the dispatcher admits through it; with
 * OUTBOUND_FLEET_MAX_CONCURRENT, outbound calls take fleet-wide slots (src/fleet/outbound-slots.ts).
 */
async function newFleetAdmission(
  deps: ConstructorParameters<typeof FleetAdmission>[0],
  a: { outbound: OutboundCalls | undefined },
): Promise<FleetAdmission> {
  const { FleetAdmission } = await import('../fleet/admission.js');
  const fleetAdmission = new FleetAdmission(deps);
  deps.dispatcher.setDelegate(fleetAdmission);
  const { config, fleet } = deps;
  const cap = config.outbound.fleetMaxConcurrent;
  if (a.outbound && cap !== undefined) {
    const { FleetOutboundSlots } = await import('../fleet/outbound-slots.js');
    // A lease outlives no attempt: ring, join and the longest call, with a margin.
    const leaseMs = config.call.maxCallMs + config.outbound.ringTimeoutMs + config.call.joinTimeoutMs + 60_000;
    const slots = new FleetOutboundSlots(fleet, cap, leaseMs);
    fleet.on('replica-lost', (lost) => void slots.dropReplica(lost.replicaId).catch(() => undefined));
    a.outbound.setFleetSlots(slots);
  }
  return fleetAdmission;
}

type FleetModule = typeof import('../fleet/index.js');
type ReplicaFleet = ReturnType<typeof newFleet>;

/** Every Daily REST request waits for the rate limiter: this replica's, or the fleet's (shared through Redis). */
function rateLimitOf(config: Config, fleetMod: FleetModule | undefined, fleet: ReplicaFleet | undefined): RestRateLimit {
  const rateLimits = parseRateLimits(config.daily.rateLimits);
  const limiter =
    fleetMod && fleet
      ? new fleetMod.RedisRateLimiter(fleet, rateLimits, () => fleet.lastSeen?.replicas ?? 1)
      : new LocalRateLimiter(rateLimits);
  return (method, path, priority, signal, leaseMs) =>
    limiter.acquire(rateClassOf(method, path), priority, { ...(signal ? { signal } : {}), leaseMs });
}

/** The routing file is checked before anything starts: an unknown bot is a start-up error naming it. */
function loadStartupRoutes(config: Config, logger: Logger, opts: RuntimeOptions): LoadedRoutes | undefined {
  if (opts.route) return undefined;
  const routes = loadRoutes({ botsDir: config.bots.dir, defaultBot: config.bots.defaultBot, routesFile: config.bots.routesFile });
  logger.info(
    { routesFile: routes.file, bots: routes.bots },
    routes.file ? 'bot routes loaded' : 'no routing file: every call goes to the default bot',
  );
  return routes;
}

/** Outbound calls (POST /calls, CALLS_API_TOKEN set): a bot file in BOTS_DIR, or a bot the routes name. */
function newOutbound(
  config: Config,
  logger: Logger,
  a: { rooms: RoomService; dispatcher: Dispatcher; onOutboundStatus?: OutboundStatusHook },
  routed: string[] | undefined,
) {
  const hasBot = (name: string) => routed?.includes(name) === true || resolveBotFile(config.bots.dir, name) !== undefined;
  const opened = OutboundJournal.open(config.resilience.admittedPath, logger);
  const journal = opened ? { write: (e: JournalEntry) => opened.journal.write(e), restored: opened.entries } : undefined;
  const onStatus: OutboundStatusHook = (v, r) => a.onOutboundStatus?.(v, r);
  return new OutboundCalls({ config, logger, rooms: a.rooms, dispatcher: a.dispatcher, hasBot, onStatus, ...(journal ? { journal } : {}) });
}

/**
 * Rooms, warm slots, the dispatcher with its admission budget, the reconciler of domain webhooks,
 * and the router and bots a reload replaces (src/admission/reload.ts; a given route function: nothing to reload).
 */
async function newAdmission(
  config: Config,
  logger: Logger,
  parts: {
    daily: DailyRestClient;
    pool: WorkerPool;
    routes: LoadedRoutes | undefined;
    route: Route | undefined;
    fleet: ReplicaFleet | undefined;
  },
) {
  const { daily, pool } = parts;
  const reloader = new BotReloader({ config, logger, pool, initial: parts.routes }, parts.route ?? (() => config.bots.defaultBot));
  const route = reloader.route;
  const rooms = createRoomService({ rest: daily, config, logger });
  const warm = config.warm.rooms > 0 ? new WarmSlots({ config, logger, rooms, pool }) : undefined;
  // Kept past the signature window: a replay after a restart is answered, not admitted again.
  const admitted = AdmittedLog.open(config.resilience.admittedPath, config.daily.signatureWindowMs + 60_000, logger);
  const forward: ForwardFn = (p, signal, o) => daily.pinlessCallUpdate(p, { signal, ...o });
  const budget = new AdmissionBudget({ config, pool, logger: logger.child({ component: 'admission' }) });
  const dispatcher = new Dispatcher({ config, logger, rooms, pool, route, forward, admitted, budget, ...(warm ? { warm } : {}) });
  dispatcher.on('transition', (t) => budget.onTransition(t));
  dispatcher.on('changed', (c) => budget.onChanged(c));
  const reconciler = new Reconciler({
    findByRoom: (room) => dispatcher.findByRoom(room),
    graceMs: config.daily.webhookReconcileGraceMs,
    logger,
  });
  const wired: { rooms: RoomService; dispatcher: Dispatcher; onOutboundStatus?: OutboundStatusHook } = { rooms, dispatcher };
  const wanted = config.outbound.apiToken !== undefined || config.outbound.callbackOffer;
  const outbound = wanted ? newOutbound(config, logger, wired, parts.routes?.bots) : undefined;
  reloader.warm = warm;
  const reloads = await reloadControl(reloader, logger, parts.fleet);
  // The same object as `wired`: wireCallbacks sets its onOutboundStatus. `route` follows reloads.
  return Object.assign(wired, { warm, reconciler, outbound, reloads, route });
}

/** What listen() and shutdown() need besides the Runtime's own fields. */
interface Lifecycle {
  fleet: ReplicaFleet | undefined;
  fleetAdmission: FleetAdmission | undefined;
  ownEmulator: boolean;
  registerDomainWebhook: boolean;
  startedAtMs: number;
  sweepStop: AbortController;
  unrecord: (() => void) | undefined;
  /** What the last process's orphaned workers left (read before the records opened). */
  orphans: { dir: string; scan: OrphanScan } | undefined;
  /** Fleet mode: the fleet-wide right to write a lost call's one record (fleet/routing.ts `claimRecord`). */
  claimRecord: ((callId: string) => Promise<boolean>) | undefined;
  adoption: OrphanAdoption | undefined;
}

async function listen(rt: Runtime, life: Lifecycle): Promise<string> {
  const { config, app, emulator, daily, logger } = rt;
  await rt.browsers?.start();
  rt.pool.start();
  rt.warm?.start();
  const address = await app.listen({ host: config.host, port: config.port });
  const u = new URL(address);
  if (u.hostname === '0.0.0.0' || u.hostname === '[::]') u.hostname = '127.0.0.1';
  rt.url = u.origin;
  if (life.fleet) life.fleet.opts.meta.url = rt.url;
  await life.fleetAdmission?.start();
  await rt.reloads.start();
  await rt.callbacks?.callbacks.start();
  const rec = config.call.recording;
  if (rec.retentionDays > 0) {
    startRecordingRetention(
      { days: rec.retentionDays, daily, dir: rec.dir, logger: logger.child({ component: 'recordings' }) },
      life.sweepStop.signal,
    );
  }
  if (life.orphans) {
    const { records } = rt;
    const { claimRecord } = life;
    life.adoption = new OrphanAdoption(
      {
        dir: life.orphans.dir,
        dispatcher: rt.dispatcher,
        logger,
        ...(claimRecord ? { mayRecord: claimRecord } : {}),
        ...(records ? { discard: (id: string) => records.discardOpen(id) } : {}),
      },
      life.orphans.scan,
    );
  }
  if (emulator && config.emulator.enabled) {
    // Point the emulator's numbers at this replica, signed with our secret.
    emulator.setPinlessDialin(
      config.emulator.numbers.map((n) => ({ phone_number: n, room_creation_api: `${rt.url}/dialin`, hmac: rt.pinlessSecrets[0]! })),
    );
    if (life.registerDomainWebhook) await registerEmulatorWebhook(daily, `${rt.url}/webhooks/daily`, rt.webhookSecrets[0]!, logger);
  }
  // This replica's rooms left behind by an earlier process (docs/RELIABILITY.md): in the background.
  if (config.resilience.admittedPath) rt.leftovers = startLeftoverSweep(rt, life, config.resilience.admittedPath);
  return rt.url;
}

function startLeftoverSweep(rt: Runtime, life: Lifecycle, admittedPath: string): Runtime['leftovers'] {
  const { config, logger, dispatcher, rooms } = rt;
  const replicaId = config.resilience.replicaId;
  const lock = takeReplicaLock(path.dirname(admittedPath));
  if (!lock.ok) {
    logger.error({ holder: lock.holder, replicaId }, 'another live process uses this data directory: not sweeping leftover rooms');
    return undefined;
  }
  return sweepLeftovers({
    rest: rt.daily,
    release: (n) => rooms.release(n),
    replicaId,
    startedAtMs: life.startedAtMs,
    inUse: (room) => dispatcher.findByRoom(room) !== undefined || life.adoption?.hasRoom(room) === true,
    logger,
    signal: life.sweepStop.signal,
  });
}

/** At shutdown, queued room deletions go on at most this long (within the grace period). */
const SHUTDOWN_ROOM_FLUSH_MS = 5_000;

async function shutdown(rt: Runtime, life: Lifecycle, timeoutMs: number): Promise<void> {
  const startedMs = Date.now();
  await rt.reloads.close();
  await life.fleetAdmission?.setDraining();
  life.sweepStop.abort();
  life.adoption?.close();
  // Queued outbound calls are not started any more (their status stays queued; not persisted).
  rt.outbound?.close();
  // No new callback offers or callbacks (those pending stay in their store for the next start).
  rt.callbacks?.offer.close();
  rt.callbacks?.callbacks.close();
  await rt.dispatcher.drain(timeoutMs);
  // The rooms of the last calls: deleted within what is left of the grace period (at most
  // SHUTDOWN_ROOM_FLUSH_MS); the rest expire by their `exp`.
  await rt.rooms.flush(Math.min(SHUTDOWN_ROOM_FLUSH_MS, timeoutMs - (Date.now() - startedMs)));
  await rt.app.close();
  await rt.pool.close();
  await rt.dispatcher.close();
  await life.fleetAdmission?.close();
  rt.reconciler.close();
  rt.rooms.close();
  await rt.browsers?.close();
  life.unrecord?.();
  await rt.records?.shutdown();
  if (life.ownEmulator) await rt.emulator?.close();
}

/** The Fleet of this replica (config.fleet is set). */
function newFleet(mod: typeof import('../fleet/index.js'), config: Config, logger: Logger) {
  const f = config.fleet!;
  const { maxConcurrentBots, maxQueuedCalls, queueTimeoutMs } = config.admission;
  return new mod.Fleet<CallAssignment>({
    url: f.redisUrl,
    namespace: f.namespace,
    capacity: maxConcurrentBots,
    maxQueued: maxQueuedCalls,
    // Beyond the longest a call can live (and its wait), so a late duplicate still dedupes.
    claimTtlMs: config.call.maxCallMs + queueTimeoutMs + 10 * 60_000,
    requeueWaitMs: queueTimeoutMs,
    heartbeatMs: f.heartbeatMs,
    replicaLostMs: f.replicaLostMs,
    opTimeoutMs: f.opTimeoutMs,
    admitTimeoutMs: f.admitTimeoutMs,
    degradeAfterMs: f.degradeAfterMs,
    meta: { version },
    logger,
  });
}

/** Creates (or re-points) the emulator's domain webhook at this replica, like `patchbay webhooks create`. */
async function registerEmulatorWebhook(daily: DailyRestClient, url: string, hmac: string, logger: Logger): Promise<void> {
  try {
    for (const w of await daily.listWebhooks({ policy: 'admin' })) await daily.deleteWebhook(w.uuid);
    await daily.createWebhook({ url, hmac, eventTypes: [...DOMAIN_EVENT_TYPES], retryType: 'exponential' });
    logger.info({ url }, 'emulator: domain webhook registered');
  } catch (err) {
    logger.warn({ err: errorMessage(err) }, 'emulator: could not register the domain webhook; domain events are off');
  }
}
