/**
 * DELETE /calls/:id/recording (issue 24, e.g. a caller's erasure request): deletes the call's
 * recordings — Daily's through `DELETE /recordings/:id`, local files under RECORDINGS_DIR — by the
 * ids its record holds. Under the dashboard's auth. Answers `{deleted: [ids]}`; a recording already
 * gone counts as deleted. The record keeps the ids (an ended record is not rewritten).
 */
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { Type } from 'typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../deps.js';
import { dashboardAuth } from './dashboard-auth.js';
import { recordingSummary } from '../../records/recording.js';
import { errorMessage } from '../../core/errors.js';

const LOCAL_ID = /^[\w.-]+\.wav$/;

export const callRecordingRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const auth = dashboardAuth(deps.config);
  app.delete(
    '/calls/:id/recording',
    {
      schema: { params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' }) }) },
      onRequest: auth.hook,
    },
    async (req, reply) => {
      const call = await deps.records?.get(req.params.id);
      if (!call) return reply.code(404).send({ error: 'not_found', message: `no call record ${req.params.id}` });
      const deleted: string[] = [];
      try {
        for (const id of recordingSummary(call.events).ids) {
          if (LOCAL_ID.test(id)) {
            await unlink(path.join(deps.config.call.recording.dir, path.basename(id))).catch((err: NodeJS.ErrnoException) => {
              if (err.code !== 'ENOENT') throw err;
            });
          } else if (deps.daily) await deps.daily.deleteRecording(id);
          else continue;
          deleted.push(id);
        }
      } catch (err) {
        return reply.code(502).send({ error: 'delete_failed', message: errorMessage(err), deleted });
      }
      deps.logger.info({ callId: call.id, deleted: deleted.length }, 'call recording deleted on request');
      return { deleted };
    },
  );
};
