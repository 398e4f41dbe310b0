/**
 * DASHBOARD_TOKEN: when set, the dashboard page, its WebSocket and GET /calls need it, as
 * `?token=<token>` or `Authorization: Bearer <token>`. Compared in constant time; never logged
 * (refusals log the path without its query string).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

const digest = (s: string) => createHash('sha256').update(s).digest();

export interface DashboardAuth {
  /** True when no token is configured. */
  readonly open: boolean;
  /** True when the request carries the token (or none is configured). */
  check(headers: IncomingHttpHeaders, rawUrl: string | undefined): boolean;
  /** Fastify onRequest hook: 401 + a log line when the token is missing or wrong. */
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

export function dashboardAuth(token: string | undefined): DashboardAuth {
  const want = token === undefined ? undefined : digest(token);
  const check = (headers: IncomingHttpHeaders, rawUrl: string | undefined): boolean => {
    if (!want) return true;
    const got = presentedToken(headers, rawUrl);
    return got !== undefined && timingSafeEqual(digest(got), want);
  };
  return {
    open: want === undefined,
    check,
    async hook(req, reply) {
      if (check(req.headers, req.raw.url)) return;
      req.log.warn({ path: (req.raw.url ?? '').split('?')[0], ip: req.ip, status: 401 }, 'dashboard: missing or wrong token');
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="patchbay dashboard"')
        .header('cache-control', 'no-store')
        .send({ error: 'unauthorized', message: 'this needs the dashboard token: ?token=… or Authorization: Bearer …' });
    },
  };
}
