/** What the Deepgram stand-in's two endpoints (/v1/listen, /v2/listen) share: the handshake's checks and refusals. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

export const ENCODINGS = ['linear16', 'linear32', 'flac', 'alaw', 'mulaw', 'amr-nb', 'amr-wb', 'opus', 'ogg-opus', 'speex', 'g729'];
export const NET_0001 = 'Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001';

export function refuse(socket: Duplex, status: number, errCode: string, errMsg: string): void {
  const requestId = randomUUID();
  const body = JSON.stringify({ err_code: errCode, err_msg: errMsg, request_id: requestId });
  const text = status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\ndg-request-id: ${requestId}\r\ndg-error: ${errMsg}\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** The key of a handshake: the Authorization header (Token/Bearer) or the `token, <key>` subprotocol. */
export function keyOf(req: IncomingMessage): { key: string; auth: 'header' | 'subprotocol' } | undefined {
  const h = /^(?:token|bearer)\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (h?.[1]) return { key: h[1].trim(), auth: 'header' };
  const protos = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
  const i = protos.findIndex((p) => p.toLowerCase() === 'token' || p.toLowerCase() === 'bearer');
  if (i >= 0 && protos[i + 1]) return { key: protos[i + 1]!, auth: 'subprotocol' };
  return undefined;
}

/** Deepgram's refusals of the query; undefined when acceptable. */
export function checkQuery(q: Record<string, string>): string | undefined {
  const enc = q.encoding;
  if (enc === undefined) return 'This stand-in needs raw audio: give encoding=linear16 and sample_rate.';
  if (!ENCODINGS.includes(enc)) return `Invalid encoding: ${enc}`;
  if (enc !== 'linear16') return `This stand-in decodes only linear16 (got ${enc}).`;
  const rate = Number(q.sample_rate);
  if (q.sample_rate === undefined) return 'sample_rate is required when encoding is set.';
  if (!Number.isInteger(rate) || rate < 8_000 || rate > 48_000) return `Invalid sample_rate: ${q.sample_rate}`;
  if (q.channels !== undefined && q.channels !== '1') return `This stand-in decodes mono only (channels=${q.channels}).`;
  return undefined;
}

/** One accepted live connection, as the stand-in saw it. */
export interface DeepgramConnection {
  /** `/v1/listen` (nova) or `/v2/listen` (Flux). */
  path: string;
  query: Record<string, string>;
  auth: 'header' | 'subprotocol';
  /** Audio received, ms. */
  audioMs: number;
  finals: string[];
  /** Every voiced segment the stand-in cut, its length and the words it gave it ('' for none): what a failed match saw. */
  segments: Array<{ spanMs: number; text: string }>;
  /** Per final: when it left and when the audio it ends on arrived (benchmarks: patchbay's share of the latency). */
  timings: FinalTiming[];
  keepAlives: number;
  closeCode?: number;
}

/** One final as the stand-in timed it (Date.now() values). */
export interface FinalTiming {
  text: string;
  /** When the segment's last voiced 20 ms frame arrived. */
  voiceEndHeardAtMs: number;
  /** That frame, as received (to find when it left the caller's side). */
  voiceEndFrame: Int16Array;
  /** When the final was handed to the socket. */
  sentAtMs: number;
}

/** Records a final just sent: its words, and its timing (a segment cut from live audio always has its last frame). */
export function recordFinal(conn: DeepgramConnection, text: string, s: { heardAtMs?: number; lastFrame?: Int16Array }): void {
  conn.finals.push(text);
  if (s.heardAtMs === undefined || !s.lastFrame) return;
  conn.timings.push({ text, voiceEndHeardAtMs: s.heardAtMs, voiceEndFrame: s.lastFrame, sentAtMs: Date.now() });
}
