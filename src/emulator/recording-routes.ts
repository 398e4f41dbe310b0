/**
 * Daily's recording endpoints (REST, under /v1) and the emulator's download of an access link
 * (under /_emulator, where the signed link points). The recordings themselves: recordings.ts.
 *
 * Daily's docs: POST /rooms/:name/recordings/start and /stop (rooms/recordings), GET /recordings
 * (list-recordings), GET /recordings/:id (get-recording), GET /recordings/:id/access-link
 * (get-recording-link: `{download_link, expires}`), DELETE /recordings/:id (delete-recording).
 */
import { statSync } from 'node:fs';
import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { EmulatorCore } from './core.js';
import { fileRangeAnswer } from '../core/byte-range.js';

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 256 }) });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const AnyBody = Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]);
const ListQuery = Type.Object(
  { room_name: Type.Optional(Type.String()), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) },
  { additionalProperties: true },
);
const LinkQuery = Type.Object({ valid_for_secs: Type.Optional(Type.Integer()) }, { additionalProperties: true });

/** The /v1 routes; registered by dailyRoutes (after its guard: faults, auth, rate limits). */
export function recordingRoutes(fastify: FastifyInstance, core: EmulatorCore): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const rec = core.recordings;
  const emptyBody = async (req: { body: unknown }) => {
    if (req.body === undefined) req.body = {};
  };
  app.post('/rooms/:name/recordings/start', { schema: { params: NameParams, body: AnyBody }, preValidation: emptyBody }, async (req) => {
    rec.start(core.rooms.require(req.params.name), req.body);
    // Daily documents no body beyond success: no id here (GET /recordings?room_name= finds it).
    return { status: 'success' };
  });
  app.post('/rooms/:name/recordings/stop', { schema: { params: NameParams, body: AnyBody }, preValidation: emptyBody }, async (req) => {
    rec.stop(core.rooms.require(req.params.name));
    return { status: 'success' };
  });
  app.get('/recordings', { schema: { querystring: ListQuery } }, async (req) => {
    const { room_name, limit } = req.query;
    const data = rec.list({ ...(room_name === undefined ? {} : { room_name }), ...(limit === undefined ? {} : { limit }) });
    return { total_count: data.length, data: data.map((r) => rec.toJson(r)) };
  });
  app.get('/recordings/:id', { schema: { params: IdParams } }, async (req) => rec.toJson(rec.get(req.params.id)));
  app.get('/recordings/:id/access-link', { schema: { params: IdParams, querystring: LinkQuery } }, async (req) =>
    rec.accessLink(req.params.id, req.query.valid_for_secs),
  );
  app.delete('/recordings/:id', { schema: { params: IdParams } }, async (req) => {
    rec.delete(req.params.id);
    return { deleted: true, id: req.params.id };
  });
}

const DownloadQuery = Type.Object({ expires: Type.Integer(), sig: Type.String({ maxLength: 128 }) });

/**
 * `GET /_emulator/recordings/:id/download?expires&sig`: the WAV behind an access link (no API key:
 * the link is the key). Daily's links point at object storage, which answers a `Range` request with
 * 206 and the bytes asked for (players seek with it): so does this one (416 past the end).
 */
export function recordingDownloadRoute(fastify: FastifyInstance, core: EmulatorCore): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/recordings/:id/download', { schema: { params: IdParams, querystring: DownloadQuery } }, async (req, reply) => {
    const file = core.recordings.download(req.params.id, req.query.expires, req.query.sig);
    const size = statSync(file).size;
    reply.type('audio/wav').header('accept-ranges', 'bytes');
    const a = fileRangeAnswer(file, size, req.headers.range);
    return reply.code(a.status).headers(a.headers).send(a.body);
  });
}
