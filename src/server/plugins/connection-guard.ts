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

export function guardConnections(server: Server, o: ConnectionGuardOptions, logger: Logger): ConnectionGuard {
  const max = o.max > 0 ? o.max : defaultMaxConnections();
  const reserve = Math.min(o.reserve, Math.floor(max / 2));
  const soft = max - reserve;
  const sockets = new Map<Socket, Tracked>();
  const bySource = new Map<string, Set<Socket>>();
  let evicted = 0;
  let refused = 0;
  let sinceLog = { evicted: 0, refused: 0, sources: new Map<string, number>() };

  const forget = (s: Socket) => {
    const t = sockets.get(s);
    if (!t) return;
    sockets.delete(s);
    const set = bySource.get(t.source);
    set?.delete(s);
    if (set && set.size === 0) bySource.delete(t.source);
  };
  const note = (kind: 'evicted' | 'refused', source: string) => {
    if (kind === 'evicted') evicted++;
    else refused++;
    sinceLog[kind]++;
    sinceLog.sources.set(source, (sinceLog.sources.get(source) ?? 0) + 1);
  };
  const cut = (s: Socket, kind: 'evicted' | 'refused') => {
    const t = sockets.get(s);
    note(kind, t?.source ?? s.remoteAddress ?? 'unknown');
    forget(s);
    s.destroy();
  };

  /** Not answering anything: no request yet, idle between keep-alive requests, or still sending one. */
  const unfinished = (t: Tracked) => t.req === undefined || !t.req.complete;

  /** The oldest socket of `pool` in the first class allowed: 1 unfinished non-priority, 2 unfinished priority, 3 answered non-priority. */
  const victim = (pool: Iterable<Socket>, classes: 1 | 2 | 3): Socket | undefined => {
    let second: Socket | undefined;
    let third: Socket | undefined;
    for (const s of pool) {
      const t = sockets.get(s);
      if (!t) continue;
      if (unfinished(t)) {
        if (!t.priority) return s;
        second ??= s;
      } else if (!t.priority) third ??= s;
    }
    if (classes >= 2 && second) return second;
    if (classes >= 3 && third) return third;
    return undefined;
  };

  const answeredNonPriority = () => {
    let n = 0;
    for (const t of sockets.values()) if (!t.priority && t.req !== undefined && t.req.complete) n++;
    return n;
  };

  const onConnection = (socket: Socket) => {
    const source = socket.remoteAddress ?? 'unknown';
    let set = bySource.get(source);
    if (o.maxPerSource > 0 && set && set.size >= o.maxPerSource) {
      const v = victim(set, 2);
      if (!v) {
        note('refused', source);
        socket.destroy();
        return;
      }
      cut(v, 'evicted');
      set = bySource.get(source);
    }
    if (sockets.size >= soft) {
      const hard = sockets.size >= max;
      const v = victim(sockets.keys(), hard ? (answeredNonPriority() > soft ? 3 : 2) : 1);
      if (v) cut(v, 'evicted');
      else if (hard) {
        note('refused', source);
        socket.destroy();
        return;
      }
    }
    sockets.set(socket, { source, req: undefined, priority: false });
    if (!set) bySource.set(source, (set = new Set()));
    set.add(socket);
    socket.once('close', () => forget(socket));
  };

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

  const timer = setInterval(() => {
    if (sinceLog.evicted === 0 && sinceLog.refused === 0) return;
    const top = [...sinceLog.sources.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
    logger.warn(
      {
        evicted: sinceLog.evicted,
        refused: sinceLog.refused,
        open: sockets.size,
        max,
        perSource: o.maxPerSource,
        topSources: Object.fromEntries(top),
        intervalMs: o.logIntervalMs,
      },
      'connection limit reached: oldest idle or unfinished sockets cut',
    );
    sinceLog = { evicted: 0, refused: 0, sources: new Map() };
  }, o.logIntervalMs);
  timer.unref();

  return {
    stats: () => ({ open: sockets.size, max, evicted, refused }),
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
