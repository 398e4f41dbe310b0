/**
 * The local Daily emulator: one Fastify instance (REST under /v1, control API under
 * /_emulator) and a WebSocket server on the same HTTP server (call clients, call events).
 */
import Fastify from 'fastify';
import { pino } from 'pino';
import { EmulatorCore } from './core.js';
import { controlRoutes, dailyRoutes, installErrorHandling } from './rest.js';
import { DomainWebhooks, webhookObserver } from './webhooks.js';
import { EmulatorSockets } from './ws.js';
import { zeroLatencies, type Emulator, type EmulatorOptions, type Latencies } from './types.js';

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
  Latencies,
  PinlessDialinEntry,
  PlaceCallOptions,
  RateLimit,
  RequestLogEntry,
  TranscriptLine,
  WebhookLogEntry,
  WebhookRecord,
} from './types.js';
export { realisticLatencies, zeroLatencies } from './types.js';

const DEFAULT_HOLD_TIMEOUT_MS = 60_000;

export async function createEmulator(opts: EmulatorOptions): Promise<Emulator> {
  if (typeof opts.apiKey !== 'string' || opts.apiKey.length === 0) throw new TypeError('createEmulator: apiKey is required');
  const logger = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'emulator' });
  const core = new EmulatorCore({
    domainName: opts.domainName ?? 'emulator',
    logger,
    latencies: { ...zeroLatencies },
    holdTimeoutMs: opts.holdTimeoutMs ?? DEFAULT_HOLD_TIMEOUT_MS,
    dtmfGapMs: opts.dtmfGapMs ?? 100,
    webhookTimeoutMs: opts.webhookTimeoutMs ?? 10_000,
  });
  core.webhooks = new DomainWebhooks({ domainId: core.domainId, timers: core.timers, log: logger, ...opts.domainWebhooks });
  core.observer = webhookObserver(core.webhooks, core.domainId);
  const setLatencies = (l: Partial<Latencies>): void => {
    for (const [k, v] of Object.entries(l)) {
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`latency ${k} must be a number >= 0`);
      if (!(k in core.latencies)) throw new RangeError(`unknown latency ${k}`);
      (core.latencies as unknown as Record<string, number>)[k] = v;
    }
  };
  setLatencies(opts.latencies ?? {});

  // Fastify does not log requests (headers carry the API key); the core logs what matters, at debug.
  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 1024 * 1024, routerOptions: { maxParamLength: 4096 } });
  installErrorHandling(app, core);
  await app.register(dailyRoutes(core, opts.apiKey), { prefix: '/v1' });
  await app.register(controlRoutes(core, setLatencies), { prefix: '/_emulator' });
  await app.ready();
  const sockets = new EmulatorSockets(core, app.server);

  const host = opts.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port: opts.port ?? 0 });
  } catch (err) {
    core.close();
    await sockets.close();
    await app.close();
    throw err;
  }
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('emulator: unexpected server address');
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const origin = `http://${hostPart}:${addr.port}`;
  core.origin = origin;
  logger.info({ origin }, 'emulator listening');

  let closing: Promise<void> | undefined;
  const emulator: Emulator = {
    origin,
    apiUrl: `${origin}/v1`,
    callDomain: core.callDomain,
    setPinlessDialin: (entries) => core.setPinless(entries),
    getPinlessDialin: () => core.getPinless().map(({ id: _id, ...e }) => e),
    placeCall: (o) => core.placeCall(o),
    getCall: (id) => core.calls.get(id) ?? core.getCallByCallId(id),
    faults: core.faults,
    requestLog: core.requestLog,
    webhookLog: core.webhookLog,
    setLatencies,
    snapshot: () => core.snapshot(),
    close: () => {
      closing ??= (async () => {
        core.close();
        await sockets.close();
        await app.close();
        logger.info('emulator closed');
      })();
      return closing;
    },
  };
  return emulator;
}
