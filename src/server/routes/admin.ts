/**
 * POST /admin/reload (docs/operations.md, "Reload"): routes and bots loaded again without a
 * restart; in fleet mode on every replica. Under the dashboard's access rules (dashboard-auth.ts):
 * loopback without a token in development, DASHBOARD_TOKEN otherwise, 404 in production without one.
 *
 *   200 { generation, bots: { <bot>: <version> }, botsDir, routesFile, tookMs, replica?, published? }
 *   409 { error: 'reload_in_progress', message }
 *   422 { error: 'bot_load_failed' | 'routes_invalid', message, bot? }  (the old bots keep serving)
 *   503 { error: 'reload_failed', message }                            (e.g. a warm room could not be made)
 */
import type { FastifyPluginAsync } from 'fastify';
import { ReloadRefused } from '../../admission/reload.js';
import { errorMessage } from '../../core/errors.js';
import type { AppDeps } from '../deps.js';
import { dashboardAuth } from './dashboard-auth.js';

export const adminRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const auth = dashboardAuth(deps.config);
  app.post('/admin/reload', { onRequest: auth.hook }, async (req, reply) => {
    const reloads = deps.reloads;
    if (!reloads) return reply.code(404).send({ error: 'reload_unavailable', message: 'this service was built without reloads' });
    try {
      return await reloads.reload('POST /admin/reload', true);
    } catch (err) {
      if (err instanceof ReloadRefused) {
        req.log.warn({ path: '/admin/reload', status: err.status, err: err.message }, 'request refused');
        return reply.code(err.status).send({ error: err.code, message: err.message, ...(err.bot ? { bot: err.bot } : {}) });
      }
      return reply.code(503).send({ error: 'reload_failed', message: errorMessage(err) });
    }
  });
};
