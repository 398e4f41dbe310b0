/**
 * The local Daily emulator, in process: one Fastify instance (REST under /v1, control API under
 * /_emulator) and a WebSocket server on the same HTTP server (call clients, call events).
 * This module is the emulator's public entry (`patchbay/emulator`): `createEmulator` (alias
 * `startEmulator`) → `Emulator` (`origin`, `apiUrl`, control methods, `close()`), and the types.
 */
import Fastify from 'fastify';
import { pino, type Logger } from 'pino';
import { EmulatorCore, type SocketCounts } from './core.js';
import { dailyRoutes, installErrorHandling } from './rest.js';
import { controlRoutes } from './control.js';
import { EmulatorSockets } from './ws.js';
import type { Emulator, EmulatorOptions } from './types.js';

export type {
  CallEnd,
  CallerStep,
  CallState,
  DialinReadyMode,
  EmulatedCall,
  Emulator,
  EmulatorOptions,
  EmulatorSnapshot,
  EndReason,
  FaultControl,
  FaultSpec,
  FaultsUpdate,
  Latencies,
  PinlessDialinEntry,
  PlaceCallOptions,
  RateLimit,
  RateLimitClass,
  RateLimitControl,
  RateLimitSettings,
  RateWindow,
  RequestLogEntry,
  TranscriptLine,
  WebhookLogEntry,
  WebhookRecord,
} from './types.js';
export { realisticLatencies, zeroLatencies } from './types.js';
export { DAILY_RATE_LIMITS } from './rate-limits.js';

const DEFAULT_HOLD_TIMEOUT_MS = 60_000;

function newCore(opts: EmulatorOptions, logger: Logger, origin: () => string): EmulatorCore {
  return new EmulatorCore({
    domainName: opts.domainName ?? 'emulator',
    logger,
    latencies: opts.latencies ?? {},
    holdTimeoutMs: opts.holdTimeoutMs ?? DEFAULT_HOLD_TIMEOUT_MS,
    dtmfGapMs: opts.dtmfGapMs ?? 100,
    webhookTimeoutMs: opts.webhookTimeoutMs ?? 10_000,
    ...(opts.domainWebhooks ? { domainWebhooks: opts.domainWebhooks } : {}),
    origin,
    apiKey: opts.apiKey,
    ...(opts.rateLimits === undefined ? {} : { rateLimits: opts.rateLimits }),
    ...(opts.recordingsDir === undefined ? {} : { recordingsDir: opts.recordingsDir }),
  });
}

/** Starts an emulator listening on `host:port` (default 127.0.0.1, ephemeral); `close()` stops it. */
export async function createEmulator(opts: EmulatorOptions): Promise<Emulator> {
  if (typeof opts.apiKey !== 'string' || opts.apiKey.length === 0) throw new TypeError('createEmulator: apiKey is required');
  const logger = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'emulator' });
  let origin = 'http://127.0.0.1:0';
  const core = newCore(opts, logger, () => origin);

  // Fastify does not log requests (headers carry the API key); the core logs what matters, at debug.
  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 1024 * 1024, routerOptions: { maxParamLength: 4096 } });
  installErrorHandling(app, core);
  // The sockets exist once the app is ready; the control API's /state asks for their counts later.
  let sockets: EmulatorSockets | undefined;
  const counts = (): SocketCounts => sockets?.counts() ?? { clients: 0, sockets: 0 };
  await app.register(dailyRoutes(core, opts.apiKey), { prefix: '/v1' });
  await app.register(controlRoutes(core, counts), { prefix: '/_emulator' });
  await app.ready();
  const ws = (sockets = new EmulatorSockets(core, app.server));

  const host = opts.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port: opts.port ?? 0 });
  } catch (err) {
    core.close();
    await ws.close();
    await app.close();
    throw err;
  }
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('emulator: unexpected server address');
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  origin = `http://${hostPart}:${addr.port}`;
  logger.info({ origin }, 'emulator listening');

  let closing: Promise<void> | undefined;
  const emulator: Emulator = {
    origin,
    apiUrl: `${origin}/v1`,
    callDomain: core.callDomain,
    setPinlessDialin: (entries) => core.pinless.set(entries),
    getPinlessDialin: () => core.pinless.plain(),
    placeCall: (o) => core.dialin.placeCall(o),
    getCall: (id) => core.calls.get(id) ?? core.calls.getByCallId(id),
    faults: core.faults,
    requestLog: core.requestLog,
    webhookLog: core.pinlessWebhook.log,
    setLatencies: (l) => core.latencies.set(l),
    setDialOutTarget: (uri, target) => core.dialOut.setTarget(uri, target),
    dialOutCalls: (roomName) => core.dialOut.callsFrom(roomName),
    dialOutsTo: (target) => core.dialOut.callsTo(target),
    rateLimits: {
      get enabled() {
        return core.rateLimits.enabled;
      },
      settings: () => core.rateLimits.settings(),
      update: (s) => core.rateLimits.update(s),
    },
    snapshot: () => core.snapshot(counts()),
    watchCaller: (fn) => core.sessions.watch(fn),
    close: () => {
      closing ??= (async () => {
        core.close();
        await ws.close();
        await app.close();
        logger.info('emulator closed');
      })();
      return closing;
    },
  };
  return emulator;
}

/** The same as `createEmulator`. */
export const startEmulator = createEmulator;
