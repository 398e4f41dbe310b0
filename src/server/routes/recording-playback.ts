/**
 * Playing a call's recording in the dashboard (issue 24, item 6; docs/dashboard.md, "Recordings"):
 *
 *   GET /calls/:id/recording        under the dashboard's auth: the recording's tracks, each with a
 *                                   signed link good for LINK_TTL_MS (recording-links.ts), its pauses
 *   GET /calls/:id/recording/audio?rec=&exp=&sig=
 *                                   the link: signature and expiry checked (403 and a log line when
 *                                   expired or tampered with), then a local WAV served with Range
 *                                   support (206), or Daily's file proxied through its access link
 *                                   (GET /recordings/:id/access-link, the typed client in src/daily/)
 *
 * A local recording is one file with silence in its PCI pauses; Daily's are one file per segment.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Type } from 'typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../deps.js';
import { dashboardAuth } from './dashboard-auth.js';
import { recordingSummary, type RecordingSummary } from '../../records/recording.js';
import { fileRangeAnswer } from '../../core/byte-range.js';
import { errorMessage } from '../../core/errors.js';
import { checkLink, linkKey, linkQuery, LINK_TTL_MS } from './recording-links.js';

const LOCAL_ID = /^[\w.-]+\.wav$/;
const CallParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' }) });
const LinkParams = Type.Object(
  {
    rec: Type.String({ minLength: 1, maxLength: 256 }),
    exp: Type.String({ pattern: '^[0-9]{1,15}$' }),
    sig: Type.String({ minLength: 1, maxLength: 128 }),
  },
  { additionalProperties: false },
);
/** Daily's access links are asked for this long and reused until a minute before they lapse. */
const DAILY_LINK_SECS = 15 * 60;
const DAILY_LINK_CACHE_MAX = 200;
const AUDIO_HEADERS = { 'cache-control': 'private, no-store', 'x-content-type-options': 'nosniff', 'accept-ranges': 'bytes' };

export interface PlaybackTrack {
  /** The local file's name or Daily's recording id. */
  id: string;
  /** Epoch ms of the track's first sample; `endMs` null while it is still being written. */
  startMs: number;
  endMs: number | null;
  url: string;
}

/** The files of a recording and when each starts: one local file, or Daily's recordings paired with their segments in order. */
export function tracksOf(s: RecordingSummary): Array<Omit<PlaybackTrack, 'url'>> {
  const first = s.segments[0];
  if (!first) return [];
  if (s.mode === 'local') {
    const id = s.ids.find((i) => LOCAL_ID.test(i));
    return id ? [{ id, startMs: first.startMs, endMs: s.segments.at(-1)!.endMs }] : [];
  }
  return s.ids.map((id, i) => {
    const seg = s.segments[Math.min(i, s.segments.length - 1)]!;
    return { id, startMs: seg.startMs, endMs: seg.endMs };
  });
}

/** Daily's download links, reused while good (the browser asks for many ranges; Daily's REST calls are rate limited). */
function dailyLinks(daily: NonNullable<AppDeps['daily']>) {
  const cache = new Map<string, { url: string; goodUntilMs: number }>();
  return async (id: string): Promise<string> => {
    const hit = cache.get(id);
    if (hit && hit.goodUntilMs > Date.now()) return hit.url;
    const link = await daily.recordingAccessLink(id, DAILY_LINK_SECS);
    if (cache.size >= DAILY_LINK_CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(id, { url: link.download_link, goodUntilMs: Math.min(link.expires * 1000, Date.now() + DAILY_LINK_SECS * 1000) - 60_000 });
    return link.download_link;
  };
}

/** A local WAV, whole (200) or the asked byte range (206; 416 past its end). */
async function sendLocal(req: FastifyRequest, reply: FastifyReply, file: string) {
  const size = await stat(file).then(
    (s) => s.size,
    () => undefined,
  );
  if (size === undefined) return reply.code(404).send({ error: 'not_found', message: 'this recording is gone (deleted or expired)' });
  reply.headers(AUDIO_HEADERS).type('audio/wav');
  const a = fileRangeAnswer(file, size, req.headers.range);
  return reply.code(a.status).headers(a.headers).send(a.body);
}

/** Daily's file through its access link, the browser's Range passed on, the answer streamed back. */
async function sendDaily(req: FastifyRequest, reply: FastifyReply, linkOf: (id: string) => Promise<string>, id: string) {
  const abort = new AbortController();
  req.raw.once('close', () => abort.abort());
  const url = await linkOf(id);
  const range = req.headers.range;
  const res = await fetch(url, { headers: range ? { range } : {}, signal: abort.signal });
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    return reply.code(res.status === 416 ? 416 : 502).send({ error: 'upstream', message: `Daily's recording answered ${res.status}` });
  }
  reply.code(res.status).headers(AUDIO_HEADERS);
  for (const h of ['content-type', 'content-length', 'content-range']) {
    const v = res.headers.get(h);
    if (v) reply.header(h, v);
  }
  return reply.send(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>));
}

export const recordingPlaybackRoutes: FastifyPluginAsync<AppDeps> = async (fastify, deps) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const auth = dashboardAuth(deps.config);
  const key = linkKey(deps.config.dashboard.token);
  const linkOf = deps.daily ? dailyLinks(deps.daily) : undefined;

  app.get('/calls/:id/recording', { schema: { params: CallParams }, onRequest: auth.hook }, async (req, reply) => {
    const call = await deps.records?.get(req.params.id);
    if (!call) return reply.code(404).send({ error: 'not_found', message: `no call record ${req.params.id}` });
    const s = recordingSummary(call.events);
    const expiresAtMs = Date.now() + LINK_TTL_MS;
    const tracks: PlaybackTrack[] = tracksOf(s).map((t) => ({
      ...t,
      url: `/calls/${encodeURIComponent(call.id)}/recording/audio?${linkQuery(key, { callId: call.id, recordingId: t.id, expiresAtMs })}`,
    }));
    reply.header('cache-control', 'no-store');
    return { callId: call.id, mode: s.mode, state: s.state, originMs: call.receivedAtMs, pauses: s.pauses, expiresAtMs, tracks };
  });

  app.get(
    '/calls/:id/recording/audio',
    { schema: { params: CallParams, querystring: LinkParams }, attachValidation: true },
    async (req, reply) => {
      if (auth.disabled) return reply.code(404).send({ error: 'not_found', message: 'the dashboard is disabled' });
      const q = req.validationError ? undefined : req.query;
      const verdict = q
        ? checkLink(key, { callId: req.params.id, recordingId: q.rec, expiresAtMs: Number(q.exp) }, q.sig)
        : ('signature' as const);
      if (verdict !== 'ok') {
        req.server.refusals.note(req.ip, `recording link refused: ${verdict === 'expired' ? 'expired' : 'bad signature'}`, {
          path: `/calls/${req.params.id}/recording/audio`,
          status: 403,
        });
        const message = verdict === 'expired' ? 'this recording link has expired: ask the dashboard again' : 'not a valid recording link';
        return reply.code(403).header('cache-control', 'no-store').send({ error: 'forbidden', message });
      }
      const id = q!.rec;
      if (LOCAL_ID.test(id)) return sendLocal(req, reply, path.join(deps.config.call.recording.dir, path.basename(id)));
      if (!linkOf) return reply.code(404).send({ error: 'not_found', message: 'no Daily client to fetch this recording' });
      try {
        return await sendDaily(req, reply, linkOf, id);
      } catch (err) {
        req.log.warn({ err: errorMessage(err), recordingId: id }, 'recording: Daily download failed');
        return reply.code(502).send({ error: 'upstream', message: errorMessage(err) });
      }
    },
  );
};
