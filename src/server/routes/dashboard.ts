/**
 * The live dashboard (docs/dashboard.md):
 *
 *   GET /dashboard               the page (static HTML; script and style from /dashboard/assets/*)
 *   GET /dashboard/funnel        step funnels of a bot (funnel.html: GET /analytics/funnel drawn)
 *   GET /dashboard/assets/:file  app.js, app.css (no data in them: served without the token)
 *   GET /ws/events               WebSocket (the `ws` package on the app's HTTP server): a `hello`
 *                                snapshot, then `call` / `ended` / `stats` messages
 *
 * With DASHBOARD_TOKEN set, the page and the socket need it (`?token=` or `Authorization: Bearer`).
 * Phone numbers are masked (last 4 digits) in everything sent. Strict CSP: only this origin.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { GOOD_OUTCOMES, OUTCOMES } from '../../core/outcome.js';
import type { Call, CallRecord, CallTransition } from '../../call/call.js';
import type { AppDeps } from '../deps.js';
import { dashboardAuth, isLoopbackAddress, type DashboardAuth } from './dashboard-auth.js';
import { errorMessage } from '../../core/errors.js';
import { viewOfRecord, viewOfStored, type CallView, type EventMessage, type StatsPayload } from './dashboard-views.js';

export const EVENTS_PATH = '/ws/events';
const STATS_INTERVAL_MS = 1_000;
const HEARTBEAT_INTERVAL_MS = 30_000;
const RECENT_MAX = 50;
const MAX_CLIENTS = 64;
const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' };

/** A browser's Origin names this service: http(s), parsable (`null` is not), and its host is the request's Host. */
export function sameOrigin(origin: string, headers: IncomingMessage['headers']): boolean {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin === 'null' || u.username || u.password) return false;
  const host = u.host.toLowerCase();
  const forwarded = headers['x-forwarded-host'];
  return host === (headers.host ?? '').toLowerCase() || (typeof forwarded === 'string' && host === forwarded.toLowerCase());
}

/** Whom a viewer slot is counted against: the client-most X-Forwarded-For hop behind a local proxy, else the peer. */
function viewerSource(req: IncomingMessage): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  const xff = req.headers['x-forwarded-for'];
  const first = (typeof xff === 'string' ? xff : '').split(',')[0]?.trim();
  return first && isLoopbackAddress(peer) ? first : peer;
}
/** A client this far behind (bytes not yet sent) is dropped rather than buffered without end. */
const MAX_BUFFERED_BYTES = 1 << 20;

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  // The call detail's recording player (signed links to this service, routes/recording-playback.ts).
  "media-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

/** The page's files: next to this module's source (`src/server/dashboard/`), also from a compiled dist/. */
export function findDashboardDir(): string {
  const candidates = [
    new URL('../dashboard/', import.meta.url), // src/server/routes → src/server/dashboard (tsx, or dist with copied assets)
    new URL('../../../../src/server/dashboard/', import.meta.url), // dist/src/server/routes → src/server/dashboard
  ];
  for (const c of candidates) {
    const dir = fileURLToPath(c);
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new Error(`dashboard: its page (index.html) is in none of ${candidates.map((c) => fileURLToPath(c)).join(', ')}`);
}

const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'turns.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'playback.js': 'text/javascript; charset=utf-8',
  'funnel.js': 'text/javascript; charset=utf-8',
  'funnel.css': 'text/css; charset=utf-8',
  'canary.js': 'text/javascript; charset=utf-8',
};

type Log = AppDeps['logger'];

/** The page and its assets. */
function pageRoutes(fastify: FastifyInstance, auth: DashboardAuth): void {
  const dir = findDashboardDir();
  const assets = new Map(Object.keys(ASSETS).map((f) => [f, readFileSync(`${dir}${f}`)]));
  // The live page, and the funnels of a bot's steps (GET /analytics/funnel drawn).
  for (const [url, file] of [
    ['/dashboard', 'index.html'],
    ['/dashboard/funnel', 'funnel.html'],
  ] as const) {
    const page = readFileSync(`${dir}${file}`);
    fastify.get(url, { onRequest: auth.hook }, async (_req, reply) => {
      return reply
        .headers({ ...PAGE_HEADERS, 'cache-control': 'no-store' })
        .type('text/html; charset=utf-8')
        .send(page);
    });
  }
  fastify.get<{ Params: { file: string } }>('/dashboard/assets/:file', async (req, reply) => {
    const body = assets.get(req.params.file);
    if (!body) return reply.code(404).send({ error: 'not_found', message: 'no such dashboard asset' });
    return reply
      .headers({ ...PAGE_HEADERS, 'cache-control': 'no-cache' })
      .type(ASSETS[req.params.file]!)
      .send(body);
  });
}

/** The last ended calls from the records, newest first (none when they cannot be read). */
function recentCalls(records: AppDeps['records'], log: Log): CallView[] {
  if (!records) return [];
  try {
    return records.list({ limit: RECENT_MAX }).map(viewOfStored);
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'could not read recent call records');
    return [];
  }
}

/** Sends a message to every open socket; a client too far behind is dropped. */
function broadcaster(wss: WebSocketServer, log: Log): (m: EventMessage) => void {
  return (m) => {
    if (wss.clients.size === 0) return;
    const data = JSON.stringify(m);
    for (const ws of wss.clients) {
      if (ws.readyState !== ws.OPEN) continue;
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        log.warn({ bufferedBytes: ws.bufferedAmount }, 'dashboard client too slow; dropping it');
        ws.terminate();
        continue;
      }
      ws.send(data);
    }
  };
}

/** Pings every socket each HEARTBEAT_INTERVAL_MS; one that did not answer the last ping is cut. */
function heartbeat(wss: WebSocketServer): NodeJS.Timeout {
  const alive = new WeakSet<WebSocket>();
  wss.on('connection', (ws: WebSocket) => {
    alive.add(ws);
    ws.on('pong', () => alive.add(ws));
  });
  const timer = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return timer;
}

/** Closes every socket; those that do not finish the closing handshake quickly are cut. */
async function closeAll(wss: WebSocketServer): Promise<void> {
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  const closing = [...wss.clients];
  if (closing.length > 0) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        for (const ws of closing) ws.terminate();
        resolve();
      }, 500);
      void Promise.all(
        closing.map((ws) => (ws.readyState === ws.CLOSED ? Promise.resolve() : new Promise((r) => ws.once('close', r)))),
      ).then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  await new Promise<void>((resolve) => wss.close(() => resolve()));
}

/** The first message on a socket: the service, the live calls and the recent ones. */
function helloMessage(deps: AppDeps, stats: StatsPayload, recent: CallView[]): Extract<EventMessage, { type: 'hello' }> {
  return {
    type: 'hello',
    nowMs: Date.now(),
    version: deps.version,
    maxConcurrentBots: deps.config.admission.maxConcurrentBots,
    records: deps.records !== undefined,
    outcomes: OUTCOMES,
    goodOutcomes: GOOD_OUTCOMES,
    stats,
    live: deps.dispatcher.liveCalls().map(viewOfRecord),
    recent,
  };
}

/**
 * The live events: a `hello` to each new socket, then the dispatcher's calls as `call` / `ended`
 * and the capacity as `stats` (each second while someone watches, only when it changed).
 */
function liveFeed(deps: AppDeps, log: Log, wss: WebSocketServer): { close(): Promise<void> } {
  const { dispatcher, pool, records } = deps;
  const recent = recentCalls(records, log);
  const broadcast = broadcaster(wss, log);
  const stats = (): StatsPayload => {
    const s = dispatcher.stats();
    return {
      queued: s.queued,
      active: s.active,
      admitting: s.admitting,
      capacity: s.capacity,
      draining: s.draining,
      workers: pool.stats(),
    };
  };
  let statsTimer: NodeJS.Timeout | undefined;
  let lastStats = '';
  const tick = () => {
    const s = stats();
    const key = JSON.stringify(s);
    // Only what changed (and a keep-alive every 10 ticks would be noise: pings do that).
    if (key !== lastStats) {
      lastStats = key;
      broadcast({ type: 'stats', nowMs: Date.now(), ...s });
    }
  };
  const onUpdated = (r: CallRecord) => {
    // A late stage report after the outcome must not bring an ended call back to life on the page;
    // a call shows up once it is queued (its room exists).
    if (r.state === 'ended' || r.state === 'admitting') return;
    broadcast({ type: 'call', nowMs: Date.now(), call: viewOfRecord(r) });
    // Capacity tiles follow the call at once rather than at the next tick.
    if (statsTimer) tick();
  };
  const onEnded = (r: CallRecord) => {
    const v = viewOfRecord(r);
    recent.unshift(v);
    if (recent.length > RECENT_MAX) recent.length = RECENT_MAX;
    broadcast({ type: 'ended', nowMs: Date.now(), call: v });
    // The queue frees the slot just after this event: look again on the next turn.
    if (statsTimer) setImmediate(tick);
  };
  const onTransition = (t: CallTransition) => (t.to === 'ended' ? onEnded(t.call.record) : onUpdated(t.call.record));
  const onChanged = (c: Call) => onUpdated(c.record);
  dispatcher.on('transition', onTransition);
  dispatcher.on('changed', onChanged);
  const pings = heartbeat(wss);
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    ws.on('error', (err) => log.debug({ err: err.message }, 'dashboard socket error'));
    // The page only listens; anything it sends is ignored.
    ws.on('message', () => undefined);
    ws.on('close', () => {
      if (wss.clients.size === 0 && statsTimer) {
        clearInterval(statsTimer);
        statsTimer = undefined;
      }
    });
    log.debug({ ip: req.socket.remoteAddress, clients: wss.clients.size }, 'dashboard client connected');
    const hello = helloMessage(deps, stats(), recent);
    ws.send(JSON.stringify(hello));
    if (!statsTimer) {
      lastStats = JSON.stringify(hello.stats);
      statsTimer = setInterval(tick, STATS_INTERVAL_MS);
      statsTimer.unref();
    }
  });
  return {
    close: async () => {
      dispatcher.off('transition', onTransition);
      dispatcher.off('changed', onChanged);
      clearInterval(pings);
      if (statsTimer) clearInterval(statsTimer);
      await closeAll(wss);
    },
  };
}

const refuse = (socket: Duplex, status: number, text: string, extra = '') => {
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n${extra}Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
};

/** The HTTP server's `upgrade` listener for EVENTS_PATH: token, origin, viewer limits, then the socket. */
function upgradeHandler(fastify: FastifyInstance, auth: DashboardAuth, wss: WebSocketServer, config: AppDeps['config']) {
  const viewers = new Map<string, number>();
  const refusals = fastify.refusals;
  return (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== EVENTS_PATH) {
      // Not ours: leave it to another upgrade listener, if there is one.
      if (fastify.server.listenerCount('upgrade') <= 1) refuse(socket, 404, 'Not Found');
      return;
    }
    socket.on('error', () => undefined);
    const a = auth.access(req.headers, req.url, req.socket.remoteAddress);
    if (!a.ok) {
      refusals.note(
        req.socket.remoteAddress ?? 'unknown',
        a.reason === 'token' ? 'dashboard: missing or wrong token' : 'dashboard: socket refused',
        { path, status: a.status, reason: a.reason },
      );
      return refuse(
        socket,
        a.status,
        STATUS_TEXT[a.status]!,
        a.status === 401 ? 'WWW-Authenticate: Bearer realm="patchbay dashboard"\r\n' : '',
      );
    }
    // Browsers always send Origin: refuse pages of other sites (cross-site WebSocket hijacking), and
    // anything that does not parse as an http(s) origin (`null` from sandboxed frames and files).
    const origin = req.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, req.headers)) {
      refusals.note(req.socket.remoteAddress ?? 'unknown', 'dashboard: socket from another origin refused', { path, status: 403 });
      return refuse(socket, 403, 'Forbidden');
    }
    const source = viewerSource(req);
    const mine = viewers.get(source) ?? 0;
    if (wss.clients.size >= MAX_CLIENTS || mine >= config.dashboard.maxClientsPerSource) {
      refusals.note(source, 'dashboard: too many clients', {
        clients: wss.clients.size,
        fromSource: mine,
        perSource: config.dashboard.maxClientsPerSource,
      });
      return refuse(socket, 503, 'Service Unavailable', 'Retry-After: 30\r\n');
    }
    viewers.set(source, mine + 1);
    fastify.connections.upgraded(req);
    socket.once('close', () => {
      const n = (viewers.get(source) ?? 1) - 1;
      if (n <= 0) viewers.delete(source);
      else viewers.set(source, n);
    });
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };
}

export const dashboardRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const auth = dashboardAuth(deps.config);
  const log = deps.logger.child({ component: 'dashboard' });
  if (auth.disabled) log.warn('NODE_ENV=production and no DASHBOARD_TOKEN: the dashboard, its socket and /calls are disabled (404)');
  else if (auth.open) log.info('no DASHBOARD_TOKEN: the dashboard, its socket and /calls answer loopback clients only');
  pageRoutes(fastify, auth);
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4 * 1024, perMessageDeflate: false });
  const feed = liveFeed(deps, log, wss);
  const onUpgrade = upgradeHandler(fastify, auth, wss, deps.config);
  fastify.server.on('upgrade', onUpgrade);
  fastify.addHook('preClose', async () => {
    fastify.server.off('upgrade', onUpgrade);
    await feed.close();
  });
};
