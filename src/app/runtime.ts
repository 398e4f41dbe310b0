/**
 * Wires one replica together: the Daily REST client (or the embedded emulator), the worker pool,
 * the dispatcher and the Fastify app. Used by server.ts and by the tests, so both run the same thing.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../core/config.js';
import { DailyRestClient } from '../daily/rest.js';
import { createRoomService, type RoomService } from '../daily/room-service.js';
import { DOMAIN_EVENT_TYPES } from '../daily/webhook-events.js';
import { BrowserHost } from '../daily/browser/host.js';
import { Dispatcher } from '../admission/dispatcher.js';
import { WorkerPool } from '../workers/parent/pool.js';
import { WarmSlots } from '../workers/parent/warm-slots.js';
import { Reconciler } from '../call/reconcile.js';
import { AdmittedLog } from '../admission/admitted-log.js';
import { AdmissionBudget } from '../admission/budget.js';
import { sweepLeftovers, takeReplicaLock } from '../daily/leftovers.js';
import type { WorkerInit } from '../workers/protocol.js';
import { loadRoutes, type Route } from '../admission/router.js';
import { resolveTtsProvider } from '../voice/tts.js';
import type { Emulator } from '../emulator/server.js';
import type { Logger } from '../core/logger.js';
import { recordDispatcherCalls } from '../records/adapter.js';
import { openConfiguredRecords } from '../records/open.js';
import type { RecordStore } from '../records/store.js';
import { buildApp } from '../server/app.js';
import type { FleetAdmission } from '../fleet/admission.js';
import { LocalRateLimiter, parseRateLimits, rateClassOf, type RatePriority } from '../daily/rate-limit.js';
import type { CallAssignment } from '../workers/protocol.js';
import { errorMessage } from '../core/errors.js';

export interface Runtime {
  config: Config;
  logger: Logger;
  app: FastifyInstance;
  dispatcher: Dispatcher;
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
  /** Base URL once listening. */
  url: string;
  /** The start-up sweep of this replica's leftover rooms (src/daily/leftovers.ts), when it runs. */
  leftovers: Promise<{ listed: number; leftovers: number }> | undefined;
  listen(): Promise<string>;
  /** Readiness off, live calls finish (up to timeoutMs), then everything stops. */
  shutdown(timeoutMs: number): Promise<void>;
}

export const version: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    if (pkg.version) return pkg.version;
  } catch {
    /* compiled layout */
  }
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

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
  // The routing file is checked before anything starts: an unknown bot is a start-up error naming it.
  const routes = opts.route
    ? undefined
    : loadRoutes({ botsDir: config.bots.dir, defaultBot: config.bots.defaultBot, routesFile: config.bots.routesFile });
  if (routes)
    logger.info(
      { routesFile: routes.file, bots: routes.bots },
      routes.file ? 'bot routes loaded' : 'no routing file: every call goes to the default bot',
    );
  // Call records open before anything starts: a corrupt or unwritable file is a start-up error naming it.
  const records = await openConfiguredRecords(config, logger);
  let emulator = opts.emulator?.instance;
  let apiUrl = config.daily.apiUrl;
  let apiKey = config.daily.apiKey;
  let pinlessSecrets = config.daily.pinlessHmacSecrets;
  let webhookSecrets = config.daily.webhookHmacSecrets;
  let ownEmulator = false;

  if (config.emulator.enabled) {
    if (!emulator) {
      const { createEmulator } = await import('../emulator/server.js');
      apiKey = config.emulator.apiKey ?? `emu_${randomBytes(12).toString('hex')}`;
      emulator = await createEmulator({
        host: config.emulator.host,
        port: config.emulator.port,
        apiKey,
        logger: logger.child({ component: 'emulator' }),
        rateLimits: config.emulator.rateLimits,
      });
      ownEmulator = true;
    } else apiKey = opts.emulator!.apiKey;
    apiUrl = emulator.apiUrl;
    if (pinlessSecrets.length === 0) pinlessSecrets = [randomBytes(32).toString('base64')];
    if (webhookSecrets.length === 0) webhookSecrets = [randomBytes(32).toString('base64')];
    logger.info({ emulator: emulator.origin }, 'no DAILY_API_KEY: using the built-in Daily emulator');
  } else if (pinlessSecrets.length === 0) {
    logger.warn(
      '!!! DAILY_PINLESS_HMAC is not set: dial-in webhooks are NOT verified. Anyone who can reach /dialin can start bots. Development only. !!!',
    );
  }
  if (!apiUrl || !apiKey) throw new Error('Daily API URL and key are required');

  // Fleet mode (REDIS_URL): the fleet layer is loaded only then; Daily's rate limits are shared through it.
  const fleetMod = config.fleet ? await import('../fleet/index.js') : undefined;
  const fleet = fleetMod && config.fleet ? newFleet(fleetMod, config, logger) : undefined;
  const rateLimits = parseRateLimits(config.daily.rateLimits);
  const limiter =
    fleetMod && fleet
      ? new fleetMod.RedisRateLimiter(fleet, rateLimits, () => fleet.lastSeen?.replicas ?? 1)
      : new LocalRateLimiter(rateLimits);
  const rateLimit = (method: string, path: string, priority: RatePriority, signal: AbortSignal | undefined, leaseMs: number) =>
    limiter.acquire(rateClassOf(method, path), priority, { ...(signal ? { signal } : {}), leaseMs });
  const daily = new DailyRestClient({ apiUrl, apiKey, timeoutMs: config.daily.apiTimeoutMs, rateLimit });
  const init: WorkerInit = {
    logLevel: config.logLevel,
    maskNumbers: config.logMaskNumbers,
    callClient: config.daily.callClient,
    chromiumPath: config.daily.chromiumPath,
    dailyBundleUrl: config.daily.bundleUrl,
    dailyApiUrl: apiUrl,
    dailyApiKey: apiKey,
    apiTimeoutMs: config.daily.apiTimeoutMs,
    botsDir: config.bots.dir,
    preloadBots: [...new Set([...(routes?.bots ?? [config.bots.defaultBot]), ...(opts.preloadBots ?? [])])],
    dialinReadyTimeoutMs: config.call.dialinReadyTimeoutMs,
    joinTimeoutMs: config.call.joinTimeoutMs,
    maxCallMs: config.call.maxCallMs,
    pinlessUpdateTimeoutMs: config.call.pinlessUpdateTimeoutMs,
    pinlessUpdateDeadlineMs: config.call.pinlessUpdateDeadlineMs,
    pingTimeoutMs: config.workers.pingTimeoutMs,
    tts: {
      provider: resolveTtsProvider(config.tts.provider, { callClient: config.daily.callClient, espeakPath: config.tts.espeakPath, logger }),
      sampleRate: config.tts.sampleRate,
      espeakPath: config.tts.espeakPath,
      cacheEntries: config.tts.cacheEntries,
      ...(config.tts.cacheDir ? { cacheDir: config.tts.cacheDir } : {}),
      ...(config.tts.voice ? { voice: config.tts.voice } : {}),
      ...(config.tts.provider === 'openai' && config.llm
        ? { baseUrl: config.tts.baseUrl, model: config.tts.model, apiKey: config.llm.apiKey }
        : {}),
    },
    ...(config.llm ? { llm: config.llm } : {}),
  };
  const browsers =
    config.daily.callClient === 'daily' && config.daily.browserLayout === 'shared'
      ? new BrowserHost({
          chromiumPath: config.daily.chromiumPath,
          botsPerBrowser: config.daily.botsPerBrowser,
          browsers: Math.ceil((config.admission.maxConcurrentBots + config.workers.idle) / config.daily.botsPerBrowser),
          logger,
        })
      : undefined;
  const pool = new WorkerPool({
    ...(browsers ? { leaseBrowser: () => browsers.lease() } : {}),
    init,
    idle: config.workers.idle,
    logger: logger.child({ component: 'pool' }),
    // SupervisionOptions is the subset of config.workers the supervisor reads.
    supervision: { ...config.workers, nice: config.resilience.workerNice, rateLimit },
  });
  const rooms = createRoomService({ rest: daily, config, logger });
  const warm = config.warm.rooms > 0 ? new WarmSlots({ config, logger, rooms, pool }) : undefined;
  const startedAtMs = Date.now();
  const admittedPath = config.resilience.admittedPath;
  // Kept past the signature window: a replay after a restart is answered, not admitted again.
  const admitted = AdmittedLog.open(admittedPath, config.daily.signatureWindowMs + 60_000, logger);
  const forward = (p: { callId: string; callDomain: string; sipUri: string }, signal: AbortSignal) =>
    daily.pinlessCallUpdate(p, { signal });
  const budget = new AdmissionBudget({ config, pool, logger: logger.child({ component: 'admission' }) });
  const dispatcher = new Dispatcher({
    config,
    logger,
    rooms,
    pool,
    route: opts.route ?? routes!.route,
    forward,
    admitted,
    budget,
    ...(warm ? { warm } : {}),
  });
  dispatcher.on('transition', (t) => budget.onTransition(t));
  dispatcher.on('changed', (c) => budget.onChanged(c));
  const reconciler = new Reconciler({
    findByRoom: (room) => dispatcher.findByRoom(room),
    graceMs: config.daily.webhookReconcileGraceMs,
    logger,
  });
  // Written off the call path (the store queues; a writer flushes batches).
  const unrecord = records ? recordDispatcherCalls(records, dispatcher) : undefined;
  let fleetAdmission: FleetAdmission | undefined;
  if (fleet) {
    const { FleetAdmission } = await import('../fleet/admission.js');
    fleetAdmission = new FleetAdmission({ config, logger, dispatcher, reconciler, rooms, fleet });
    dispatcher.setDelegate(fleetAdmission);
  }
  const app = await buildApp({
    config,
    logger,
    dispatcher,
    reconciler,
    pool,
    pinlessSecrets,
    webhookSecrets,
    version,
    records,
    fleet: fleetAdmission,
  });
  if (fleetMod && fleet) fleetMod.registerFleetMetrics(app.metrics, fleet);

  const sweepStop = new AbortController();
  const rt: Runtime = {
    config,
    logger,
    app,
    dispatcher,
    reconciler,
    rooms,
    pool,
    browsers,
    warm,
    daily,
    emulator,
    pinlessSecrets,
    webhookSecrets,
    records,
    url: '',
    leftovers: undefined,
    async listen() {
      await browsers?.start();
      pool.start();
      warm?.start();
      const address = await app.listen({ host: config.host, port: config.port });
      const u = new URL(address);
      if (u.hostname === '0.0.0.0' || u.hostname === '[::]') u.hostname = '127.0.0.1';
      rt.url = u.origin;
      if (fleet) fleet.opts.meta.url = rt.url;
      await fleetAdmission?.start();
      if (emulator && config.emulator.enabled) {
        // Point the emulator's numbers at this replica, signed with our secret.
        emulator.setPinlessDialin(
          config.emulator.numbers.map((n) => ({ phone_number: n, room_creation_api: `${rt.url}/dialin`, hmac: pinlessSecrets[0]! })),
        );
        if (opts.registerDomainWebhook ?? ownEmulator)
          await registerEmulatorWebhook(daily, `${rt.url}/webhooks/daily`, webhookSecrets[0]!, logger);
      }
      // This replica's rooms left behind by an earlier process (docs/RELIABILITY.md): in the background.
      if (admittedPath) {
        const lock = takeReplicaLock(path.dirname(admittedPath));
        if (!lock.ok)
          logger.error(
            { holder: lock.holder, replicaId: config.resilience.replicaId },
            'another live process uses this data directory: not sweeping leftover rooms',
          );
        else {
          const replicaId = config.resilience.replicaId;
          const inUse = (room: string) => dispatcher.findByRoom(room) !== undefined;
          rt.leftovers = sweepLeftovers({
            rest: daily,
            release: (n) => rooms.release(n),
            replicaId,
            startedAtMs,
            inUse,
            logger,
            signal: sweepStop.signal,
          });
        }
      }
      return rt.url;
    },
    async shutdown(timeoutMs) {
      await fleetAdmission?.setDraining();
      sweepStop.abort();
      await dispatcher.drain(timeoutMs);
      await app.close();
      await pool.close();
      await dispatcher.close();
      await fleetAdmission?.close();
      reconciler.close();
      rooms.close();
      await browsers?.close();
      unrecord?.();
      await records?.shutdown();
      if (ownEmulator) await emulator?.close();
    },
  };
  return rt;
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
