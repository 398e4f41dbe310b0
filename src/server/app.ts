/**
 * Builds the Fastify instance (never listens: server.ts does). Routes:
 *   POST /dialin        Daily's pinless dial-in webhook (room_creation_api)
 *   POST /webhooks/daily  Daily's domain webhooks (dialin.*, meeting.*, participant.*)
 *   GET  /health/live   the process is up
 *   GET  /health/ready  503 while draining or when admission is full
 *   GET  /status        JSON: calls, queue, workers, version
 *   GET  /metrics       Prometheus metrics (plugins/metrics.ts)
 *   GET  /calls         stored call records (routes/calls.ts)
 *   GET  /analytics/funnel  step funnels of a bot (routes/analytics.ts)
 *   GET  /dashboard     live dashboard, with its WebSocket GET /ws/events (routes/dashboard.ts)
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from '../core/config.js';
import type { AppDeps } from './deps.js';

export type { AppDeps } from './deps.js';
import { adminRoutes } from './routes/admin.js';
import { analyticsRoutes } from './routes/analytics.js';
import { canaryAnalyticsRoutes } from './routes/analytics-canary.js';
import { callsRoutes } from './routes/calls.js';
import { outboundRoutes } from './routes/outbound.js';
import { callRecordingRoutes } from './routes/call-recording.js';
import { recordingPlaybackRoutes } from './routes/recording-playback.js';
import { dailyWebhookRoutes } from './routes/daily-webhooks.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { dialinRoutes } from './routes/dialin.js';
import { healthRoutes } from './routes/health.js';
import { authFailuresPlugin } from './plugins/auth-failures.js';
import { guardConnections, type ConnectionGuard } from './plugins/connection-guard.js';
import { metricsPlugin } from './plugins/metrics.js';
import { loggedPath, RefusalLog } from './plugins/refusal-log.js';
import { deferUntilVerified, parseJsonBody } from './signed-request.js';
import { asError } from '../core/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody: Buffer | undefined;
  }
  interface FastifyInstance {
    /** Accept-time connection accounting (plugins/connection-guard.ts). */
    connections: Pick<ConnectionGuard, 'stats' | 'upgraded'>;
    /** Refusals of unauthenticated requests, logged per source and interval (plugins/refusal-log.ts). */
    refusals: RefusalLog;
  }
}

/** A hop count becomes proxy-addr's function form (Fastify's types take booleans, addresses or a function). */
function trustProxyOption(v: Config['trustProxy'] | undefined): boolean | string | ((address: string, hop: number) => boolean) {
  if (v === undefined) return true;
  return typeof v === 'number' ? (_address: string, hop: number) => hop < v : v;
}

/** JSON bodies only, their raw bytes kept; a signed route's large or deep body waits for its signature check. */
function installBodyParser(app: FastifyInstance, deps: AppDeps): void {
  app.decorateRequest('rawBody', undefined);
  // JSON only: anything else is 415 before any handler runs.
  app.removeContentTypeParser(['text/plain']);
  app.decorateRequest('bodyDeferred', false);
  // The routes whose signature is checked: a large or deep body there is verified before it is parsed (signed-request.ts).
  const signedRoutes = new Set([
    ...(deps.pinlessSecrets.length > 0 ? ['/dialin'] : []),
    ...((deps.webhookSecrets ?? deps.config.daily.webhookHmacSecrets).length > 0 ? ['/webhooks/daily'] : []),
  ]);
  // Keep the raw bytes for signature checks; refuse prototype-poisoning keys.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    req.rawBody = buf;
    if (buf.length === 0) return done(null, undefined);
    if (signedRoutes.has(req.routeOptions.url ?? '') && deferUntilVerified(buf)) {
      req.bodyDeferred = true;
      return done(null, undefined);
    }
    try {
      done(null, parseJsonBody(buf));
    } catch (err) {
      done(asError(err), undefined);
    }
  });
}

/** Errors and unknown routes as `{error, message}`. */
function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status < 500) {
      // Through the per-source refusal log, path cut short: a flood of bad requests costs a few short lines.
      req.server.refusals.note(req.ip, 'request refused', {
        path: loggedPath(req.url),
        status,
        code: err.code,
        err: err.message.slice(0, 200),
      });
      const code = err.validation ? 'invalid_body' : (err.code ?? 'bad_request').toLowerCase().replace(/^fst_err_/, '');
      return reply.code(status).send({ error: code, message: err.message });
    }
    req.log.error({ err, path: loggedPath(req.url) }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });

  app.setNotFoundHandler((req, reply) => {
    req.server.refusals.note(req.ip, 'no such route', { method: req.method, path: loggedPath(req.url) });
    return reply.code(404).send({ error: 'not_found', message: `${req.method} ${req.url.split('?')[0]} is not a route` });
  });
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const http = deps.config.http;
  const app = Fastify({
    // pino's Logger and Fastify's logger type differ in their generics; tsc needs the cast.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Our routes log what matters (one line per refusal, one per admitted call); no per-request noise.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.admission.maxBodyBytes,
    return503OnClosing: true,
    // TRUST_PROXY (default true: the client-most X-Forwarded-For address; forgeable without a proxy that overwrites it).
    trustProxy: trustProxyOption(deps.config.trustProxy),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // No socket held forever (docs/operations.md, "Connections and timeouts"): Daily answers in milliseconds.
    requestTimeout: http.requestTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    connectionTimeout: http.socketTimeoutMs,
    // Node checks the header and request timeouts on this interval (default 30 s).
    http: { headersTimeout: http.headersTimeoutMs, connectionsCheckingInterval: Math.min(1_000, http.headersTimeoutMs) },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.server.headersTimeout = http.headersTimeoutMs;
  const guard = guardConnections(
    app.server,
    {
      max: http.maxConnections,
      maxPerSource: http.maxConnectionsPerSource,
      reserve: http.priorityReserve,
      logIntervalMs: deps.config.authFailures.logIntervalMs,
    },
    deps.logger.child({ component: 'connections' }),
  );
  app.decorate('connections', guard);
  const refusals = new RefusalLog(deps.logger.child({ component: 'refusals' }), deps.config.authFailures.logIntervalMs);
  app.decorate('refusals', refusals);
  app.addHook('onClose', async () => {
    guard.stop();
    refusals.stop();
  });

  installBodyParser(app, deps);
  installErrorHandlers(app);

  // Before the routes: its onResponse hook times the /dialin answers.
  await app.register(metricsPlugin, deps);
  // Before the routes: counts their 401s per source, answers 429 past AUTH_FAILURE_LIMIT.
  await app.register(authFailuresPlugin, deps);
  await app.register(healthRoutes, deps);
  await app.register(dialinRoutes, deps);
  await app.register(dailyWebhookRoutes, deps);
  await app.register(callsRoutes, deps);
  await app.register(analyticsRoutes, deps);
  await app.register(canaryAnalyticsRoutes, deps);
  await app.register(adminRoutes, deps);
  await app.register(outboundRoutes, deps);
  await app.register(callRecordingRoutes, deps);
  await app.register(recordingPlaybackRoutes, deps);
  await app.register(dashboardRoutes, deps);
  return app;
}
