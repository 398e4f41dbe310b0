/**
 * Failed signature / auth attempts per source (@fastify/rate-limit).
 *
 * Only failures count: every 401 answered on POST /dialin or POST /webhooks/daily adds one to its
 * source's counter; once a source has more than AUTH_FAILURE_LIMIT failures within
 * AUTH_FAILURE_WINDOW_MS, its failures are answered 429 (with Retry-After) instead of 401.
 * A correctly signed request never answers 401, so it is never limited: a load balancer's address,
 * which carries every genuine call, keeps working while a forger behind it is throttled.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import { LRUCache } from 'lru-cache';
import type { AppDeps } from '../deps.js';

/** The routes whose 401s are counted. */
export const AUTH_GUARDED_ROUTES: ReadonlySet<string> = new Set(['/dialin', '/webhooks/daily']);

const plugin: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { limit, windowMs } = deps.config.authFailures;
  // global: false — no route is limited by request count; we only count failures ourselves.
  await app.register(rateLimit, { global: false, max: limit, timeWindow: windowMs, cache: 10_000 });
  const countFailure = app.createRateLimit({ max: limit, timeWindow: windowMs });
  const warned = new LRUCache<string, true>({ max: 10_000, ttl: windowMs });

  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (reply.statusCode !== 401 || !AUTH_GUARDED_ROUTES.has(req.routeOptions.url ?? '')) return payload;
    const r = await countFailure(req);
    if (r.isAllowed || !r.isExceeded) return payload;
    const retryAfterSec = Math.max(1, r.ttlInSeconds ?? 1);
    // One line per source and window, not one per refused request (a flood must not flood the logs too).
    if (!warned.has(r.key)) {
      warned.set(r.key, true, { ttl: Math.max(1, r.ttl ?? windowMs) });
      req.log.warn(
        { ip: req.ip, url: req.routeOptions.url, limit, windowMs, retryAfterSec },
        'too many failed signature attempts from this source: answering 429',
      );
    }
    reply.code(429);
    reply.header('retry-after', String(retryAfterSec));
    reply.header('content-type', 'application/json; charset=utf-8');
    return JSON.stringify({
      error: 'too_many_failures',
      message: `more than ${limit} failed signature attempts within ${windowMs} ms; retry in ${retryAfterSec} s`,
    });
  });
};

export const authFailuresPlugin = fp(plugin, { name: 'patchbay-auth-failures' });
