/**
 * Accept-time accounting of the HTTP server's sockets, so a flood of slow or idle connections
 * cannot starve Daily's webhooks or the health checks (docs/RELIABILITY.md, "Connections").
 *
 * Node's own `server.maxConnections` drops every connection beyond the cap, including the next
 * genuine webhook. Here the newest connection gets in and the oldest socket that is not being
 * answered loses:
 *
 *  - per source (the socket's peer address): past `maxPerSource`, the source's oldest socket that
 *    is idle or still sending its request is destroyed; if none is, the new one is refused;
 *  - overall: past `max - reserve`, the oldest idle or unfinished socket of a route other than the
 *    webhooks and health checks is destroyed; past `max`, also unfinished webhook / health sockets
 *    and, while they hold more than `max - reserve`, sockets answering other routes. If none
 *    qualifies, the new connection is refused. So `reserve` sockets stay for POST /dialin,
 *    POST /webhooks/daily and GET /health/* whatever the other routes hold.
 *
 * A socket whose request has fully arrived and is for a priority route is never cut here.
 * Timeouts (headers, whole request, keep-alive, inactivity) are set on the server by app.ts;
 * this module only counts. Refusals and evictions are summarised in one log line per interval.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../../core/logger.js';

export interface ConnectionGuardOptions {
  /** Sockets overall (0: derived from the process's descriptor limit, see `defaultMaxConnections`). */
  max: number;
  /** Sockets per peer address (0: no per-source cap). */
  maxPerSource: number;
  /** Sockets kept for the webhook routes and health checks. */
  reserve: number;
  /** How often the summary line of evictions / refusals is written. */
  logIntervalMs: number;
}

export interface ConnectionGuardStats {
  open: number;
  max: number;
  evicted: number;
  refused: number;
}

interface Tracked {
  source: string;
  req: IncomingMessage | undefined;
  priority: boolean;
}

/** The webhook routes and health checks: answered first under a connection flood. */
export function isPriorityRequest(method: string | undefined, url: string | undefined): boolean {
  const path = (url ?? '').split('?')[0] ?? '';
  if (method === 'POST') return path === '/dialin' || path === '/webhooks/daily';
  return (method === 'GET' || method === 'HEAD') && path.startsWith('/health/');
}

/** The limits on open descriptors (RLIMIT_NOFILE) from /proc/self/limits; undefined off Linux. */
export function fdLimits(): { soft: number; hard: number } | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return undefined;
    const n = (v: string) => (v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch {
    return undefined;
  }
}

export const fdSoftLimit = (): number | undefined => fdLimits()?.soft;

/** Leaves 256 descriptors (workers' IPC, files, outgoing requests) out of the soft limit; at most 10 000. */
export function defaultMaxConnections(softLimit = fdSoftLimit()): number {
  if (softLimit === undefined) return 1_000;
  return Math.max(64, Math.min(10_000, softLimit - 256));
}

export interface ConnectionGuard {
  stats(): ConnectionGuardStats;
  /** Marks an upgraded request's socket as answered (never evicted as idle). */
  upgraded(req: IncomingMessage): void;
  stop(): void;
}

/** Not answering anything: no request yet, idle between keep-alive requests, or still sending one. */
const unfinished = (t: Tracked) => t.req === undefined || !t.req.complete;

/** The sockets of a server, by source, and the cuts made to keep within the limits. */
class SocketTable {
  readonly sockets = new Map<Socket, Tracked>();
  readonly bySource = new Map<string, Set<Socket>>();
  evicted = 0;
  refused = 0;
  sinceLog = { evicted: 0, refused: 0, sources: new Map<string, number>() };

  forget(s: Socket): void {
    const t = this.sockets.get(s);
    if (!t) return;
    this.sockets.delete(s);
    const set = this.bySource.get(t.source);
    set?.delete(s);
    if (set && set.size === 0) this.bySource.delete(t.source);
  }

  note(kind: 'evicted' | 'refused', source: string): void {
    if (kind === 'evicted') this.evicted++;
    else this.refused++;
    this.sinceLog[kind]++;
    this.sinceLog.sources.set(source, (this.sinceLog.sources.get(source) ?? 0) + 1);
  }

  cut(s: Socket, kind: 'evicted' | 'refused'): void {
    const t = this.sockets.get(s);
    this.note(kind, t?.source ?? s.remoteAddress ?? 'unknown');
    this.forget(s);
    s.destroy();
  }

  /** The oldest socket of `pool` in the first class allowed: 1 unfinished non-priority, 2 unfinished priority, 3 answered non-priority. */
  victim(pool: Iterable<Socket>, classes: 1 | 2 | 3): Socket | undefined {
    let second: Socket | undefined;
    let third: Socket | undefined;
    for (const s of pool) {
      const t = this.sockets.get(s);
      if (!t) continue;
      if (unfinished(t)) {
        if (!t.priority) return s;
        second ??= s;
      } else if (!t.priority) third ??= s;
    }
    if (classes >= 2 && second) return second;
    if (classes >= 3 && third) return third;
    return undefined;
  }

  answeredNonPriority(): number {
    let n = 0;
    for (const t of this.sockets.values()) if (!t.priority && t.req !== undefined && t.req.complete) n++;
    return n;
  }
}

/** A new socket: admitted (after cutting a victim when a limit is reached) or refused. */
function admitConnection(table: SocketTable, socket: Socket, limits: { max: number; soft: number; maxPerSource: number }): void {
  const { sockets, bySource } = table;
  const source = socket.remoteAddress ?? 'unknown';
  let set = bySource.get(source);
  if (limits.maxPerSource > 0 && set && set.size >= limits.maxPerSource) {
    const v = table.victim(set, 2);
    if (!v) {
      table.note('refused', source);
      socket.destroy();
      return;
    }
    table.cut(v, 'evicted');
    set = bySource.get(source);
  }
  if (sockets.size >= limits.soft) {
    const hard = sockets.size >= limits.max;
    const v = table.victim(sockets.keys(), hard ? (table.answeredNonPriority() > limits.soft ? 3 : 2) : 1);
    if (v) table.cut(v, 'evicted');
    else if (hard) {
      table.note('refused', source);
      socket.destroy();
      return;
    }
  }
  sockets.set(socket, { source, req: undefined, priority: false });
  if (!set) bySource.set(source, (set = new Set()));
  set.add(socket);
  socket.once('close', () => table.forget(socket));
}

/** Logs the cuts since the last line, once per `logIntervalMs` at most. */
function logCutsPeriodically(table: SocketTable, o: ConnectionGuardOptions, max: number, logger: Logger): NodeJS.Timeout {
  const timer = setInterval(() => {
    const { sinceLog } = table;
    if (sinceLog.evicted === 0 && sinceLog.refused === 0) return;
    const top = [...sinceLog.sources.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
    logger.warn(
      {
        evicted: sinceLog.evicted,
        refused: sinceLog.refused,
        open: table.sockets.size,
        max,
        perSource: o.maxPerSource,
        topSources: Object.fromEntries(top),
        intervalMs: o.logIntervalMs,
      },
      'connection limit reached: oldest idle or unfinished sockets cut',
    );
    table.sinceLog = { evicted: 0, refused: 0, sources: new Map() };
  }, o.logIntervalMs);
  timer.unref();
  return timer;
}

export function guardConnections(server: Server, o: ConnectionGuardOptions, logger: Logger): ConnectionGuard {
  const max = o.max > 0 ? o.max : defaultMaxConnections();
  const reserve = Math.min(o.reserve, Math.floor(max / 2));
  const soft = max - reserve;
  const table = new SocketTable();
  const { sockets } = table;

  const onConnection = (socket: Socket) => admitConnection(table, socket, { max, soft, maxPerSource: o.maxPerSource });

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const t = sockets.get(req.socket);
    if (!t) return;
    t.req = req;
    t.priority = isPriorityRequest(req.method, req.url);
    res.once('finish', () => {
      if (t.req === req) {
        t.req = undefined;
        t.priority = false;
      }
    });
  };

  // After http's own listeners: the socket is set up before we may destroy it.
  server.on('connection', onConnection);
  server.on('request', onRequest);
  const timer = logCutsPeriodically(table, o, max, logger);

  return {
    stats: () => ({ open: sockets.size, max, evicted: table.evicted, refused: table.refused }),
    // An upgraded socket (the dashboard's WebSocket) is answered for as long as it lives. (Not an
    // 'upgrade' listener of our own: the dashboard answers 404 when it is the only one.)
    upgraded(req: IncomingMessage) {
      const t = sockets.get(req.socket);
      if (t) t.req = req;
    },
    stop() {
      clearInterval(timer);
      server.off('connection', onConnection);
      server.off('request', onRequest);
    },
  };
}
