/**
 * Who may read the dashboard, its WebSocket and GET /calls (docs/dashboard.md, "Access"):
 *
 *  - DASHBOARD_TOKEN set: whoever presents it, as `?token=<token>` or `Authorization: Bearer
 *    <token>` (compared in constant time; never logged: refusals log the path without its query).
 *  - No token: loopback peers only (the socket's address), with no forwarding header at all (a
 *    request that came through a proxy is not local, whatever the header says: `Forwarded`,
 *    `X-Forwarded-*`, `X-Real-IP`, `Via`, …), and only under a Host name this service answers to
 *    (localhost, 127.0.0.1, [::1], HOST, and DASHBOARD_ALLOWED_HOSTS), so a page of another site
 *    cannot read them through DNS rebinding.
 *  - NODE_ENV=production and no token: disabled (404).
 *
 * DASHBOARD_ALLOWED_HOSTS, when set, is checked with a token too.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../core/config.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

export interface DashboardPolicy {
  token: string | undefined;
  nodeEnv?: string;
  /** The HOST the service listens on (a name there is allowed in Host). */
  host?: string;
  allowedHosts?: readonly string[];
}

export type AccessCheck = { ok: true } | { ok: false; status: 401 | 403 | 404; error: string; message: string; reason: string };

export interface DashboardAuth {
  /** True when no token is configured. */
  readonly open: boolean;
  /** True when NODE_ENV=production and no token: everything answers 404. */
  readonly disabled: boolean;
  /** True when the request carries the token (or none is configured). */
  check(headers: IncomingHttpHeaders, rawUrl: string | undefined): boolean;
  /** The whole policy: disabled, Host, peer, token. */
  access(headers: IncomingHttpHeaders, rawUrl: string | undefined, peer: string | undefined): AccessCheck;
  /** Fastify onRequest hook: the refusal (and one log line) when `access` says no. */
  hook(req: FastifyRequest, reply: FastifyReply): Promise<void>;
}

export function presentedToken(headers: IncomingHttpHeaders, rawUrl: string | undefined): string | undefined {
  const authz = headers.authorization;
  if (typeof authz === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(authz.trim());
    if (m) return m[1];
  }
  try {
    return new URL(rawUrl ?? '/', 'http://x').searchParams.get('token') ?? undefined;
  } catch {
    return undefined;
  }
}

/** 127.0.0.0/8, ::1, and IPv4-mapped loopback. */
export function isLoopbackAddress(a: string | undefined): boolean {
  if (!a) return false;
  const s = a
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return s === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(s);
}

/** Headers a proxy adds to say whom it forwards for (besides any `x-forwarded-*`). */
const FORWARDING_HEADERS = [
  'forwarded',
  'x-real-ip',
  'via',
  'client-ip',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
];

/** The first header saying the request was forwarded by a proxy, if any. */
export function forwardingHeader(headers: IncomingHttpHeaders): string | undefined {
  for (const name of Object.keys(headers)) {
    const n = name.toLowerCase();
    if (n.startsWith('x-forwarded') || FORWARDING_HEADERS.includes(n)) return n;
  }
  return undefined;
}

/** The socket's peer is loopback and the request carries no forwarding header (it did not come through a proxy). */
export function isLoopbackPeer(peer: string | undefined, headers: IncomingHttpHeaders): boolean {
  return isLoopbackAddress(peer) && forwardingHeader(headers) === undefined;
}

/** The host name of a Host header (no port, brackets kept off), lower-cased; undefined when malformed. */
export function hostName(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const v = value.trim().toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/.exec(v);
  if (!m) return undefined;
  return m[1]!.replace(/^\[|\]$/g, '');
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

function policyOf(policy: DashboardPolicy | Config | string | undefined): DashboardPolicy {
  if (typeof policy === 'object' && policy !== null && 'dashboard' in policy)
    return { token: policy.dashboard.token, nodeEnv: policy.nodeEnv, host: policy.host, allowedHosts: policy.dashboard.allowedHosts };
  return typeof policy === 'object' && policy !== null ? policy : { token: policy };
}

const refused = (status: 403 | 404, error: string, reason: string, message: string): AccessCheck => ({
  ok: false,
  status,
  error,
  reason,
  message,
});

/** The Host names the dashboard answers to, and whether Host is checked at all. */
function hostRule(p: DashboardPolicy): { check: boolean; hosts: Set<string> } {
  const configured = (p.allowedHosts ?? []).map((h) => hostName(h)).filter((h): h is string => h !== undefined);
  const listenHost = hostName(p.host);
  const hosts = new Set([
    ...LOOPBACK_NAMES,
    ...configured,
    ...(listenHost && listenHost !== '0.0.0.0' && listenHost !== '::' ? [listenHost] : []),
  ]);
  return { check: p.token === undefined || configured.length > 0, hosts };
}

export function dashboardAuth(policy: DashboardPolicy | Config | string | undefined): DashboardAuth {
  const p = policyOf(policy);
  const want = p.token === undefined ? undefined : digest(p.token);
  const disabled = want === undefined && p.nodeEnv === 'production';
  const hostCheck = hostRule(p);

  const check = (headers: IncomingHttpHeaders, rawUrl: string | undefined): boolean => {
    if (!want) return true;
    const got = presentedToken(headers, rawUrl);
    return got !== undefined && timingSafeEqual(digest(got), want);
  };
  const access = (headers: IncomingHttpHeaders, rawUrl: string | undefined, peer: string | undefined): AccessCheck => {
    if (disabled) return refused(404, 'not_found', 'disabled', 'the dashboard is disabled: NODE_ENV=production needs DASHBOARD_TOKEN');
    if (hostCheck.check) {
      const h = hostName(headers.host);
      if (h === undefined || !hostCheck.hosts.has(h))
        return refused(403, 'forbidden', 'host', 'this Host is not one the dashboard answers to (DASHBOARD_ALLOWED_HOSTS)');
    }
    if (want === undefined) {
      if (isLoopbackPeer(peer, headers)) return { ok: true };
      return refused(403, 'forbidden', 'not_loopback', 'without DASHBOARD_TOKEN the dashboard answers local clients only (no proxy)');
    }
    if (!check(headers, rawUrl)) {
      return {
        ok: false,
        status: 401,
        error: 'unauthorized',
        reason: 'token',
        message: 'this needs the dashboard token: ?token=… or Authorization: Bearer …',
      };
    }
    return { ok: true };
  };
  return {
    open: want === undefined,
    disabled,
    check,
    access,
    async hook(req, reply) {
      const a = access(req.headers, req.raw.url, req.raw.socket.remoteAddress);
      if (a.ok) return;
      req.server.refusals.note(req.ip, a.reason === 'token' ? 'dashboard: missing or wrong token' : 'dashboard: request refused', {
        path: (req.raw.url ?? '').split('?')[0],
        status: a.status,
        reason: a.reason,
      });
      if (a.status === 401) reply.header('www-authenticate', 'Bearer realm="patchbay dashboard"');
      await reply.code(a.status).header('cache-control', 'no-store').send({ error: a.error, message: a.message });
    },
  };
}

/** The loud start-up warning for a production service on every interface without a token (undefined: none). */
export function exposureWarning(c: Pick<Config, 'host' | 'nodeEnv'> & { dashboard: { token: string | undefined } }): string | undefined {
  if (c.dashboard.token || c.nodeEnv !== 'production' || !['0.0.0.0', '::', '[::]', ''].includes(c.host.trim())) return undefined;
  return '!!! listening on every interface with NODE_ENV=production and no DASHBOARD_TOKEN: the dashboard and /calls are disabled; /status and /metrics are reachable by anyone who can reach this port. Set DASHBOARD_TOKEN, or HOST=127.0.0.1 behind a proxy. !!!';
}
