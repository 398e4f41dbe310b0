/**
 * The Deepgram stand-in's Flux endpoint (`/v2/listen`): `Connected` on open, then `TurnInfo`
 * messages — `StartOfTurn` when a voiced segment starts, `Update` every 250 ms of audio received,
 * `EagerEndOfTurn` (when `eager_eot_threshold` is set) and `EndOfTurn` (`trigger: model`)
 * `latencyMs` after the segment ended, with the words registered for audio of that length.
 * Client messages: `CloseStream` (ends the turn in progress, closes 1000) and `ForceEndTurn` (ends
 * it now, `trigger: manual`). No audio for `idleTimeoutMs` (10 s): close 1011, as on /v1/listen
 * (Flux's own idle limit is not documented; this is the nova one, never easier).
 */
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { EnergySegmenter, type EnergyOptions, type PhraseBook, type VoicedSegment } from './speech-energy.js';
import { NET_0001, recordFinal, type DeepgramConnection } from './stt-standin-common.js';

const UPDATE_MS = 250;

export function runFlux(
  ws: WebSocket,
  conn: DeepgramConnection,
  o: EnergyOptions & { book: PhraseBook; latencyMs?: number; idleTimeoutMs?: number },
): void {
  const q = conn.query;
  const rate = Number(q.sample_rate);
  const seg = new EnergySegmenter(rate, o);
  const requestId = randomUUID();
  const latencyMs = o.latencyMs ?? 150;
  let seq = 0;
  let turnIndex = 0;
  let sinceUpdateMs = 0;
  let closed = false;
  let out = Promise.resolve();
  const send = (m: Record<string, unknown>) => {
    if (!closed && ws.readyState === ws.OPEN) ws.send(JSON.stringify({ ...m, request_id: requestId, sequence_id: seq++ }));
  };
  const later = (delayMs: number, fn: () => void) => {
    out = out.then(() => new Promise<void>((r) => setTimeout(() => (fn(), r()), delayMs)));
  };
  const turn = (event: string, s: VoicedSegment | undefined, text: string, extra: Record<string, unknown> = {}) =>
    send({ ...turnInfo(event, s ?? { startMs: 0, endMs: seg.timeMs }, text, turnIndex), ...extra });
  const endTurn = (s: VoicedSegment, trigger: string) => {
    const text = o.book.match(s) ?? '';
    conn.segments.push({ spanMs: s.endMs - s.startMs, text });
    if (q.eager_eot_threshold && text) later(latencyMs / 2, () => turn('EagerEndOfTurn', s, text));
    later(q.eager_eot_threshold ? latencyMs / 2 : latencyMs, () => {
      turn('EndOfTurn', s, text, { trigger });
      if (text) recordFinal(conn, text, s);
      turnIndex++;
    });
  };
  let idle = setTimeout(() => closeWith(1011, NET_0001), o.idleTimeoutMs ?? 10_000);
  function closeWith(code: number, reason: string) {
    if (closed) return;
    clearTimeout(idle);
    conn.closeCode = code;
    closed = true;
    ws.close(code, reason);
  }
  send({ type: 'Connected' });
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      clearTimeout(idle);
      idle = setTimeout(() => closeWith(1011, NET_0001), o.idleTimeoutMs ?? 10_000);
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      const pcm = new Int16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + (buf.byteLength & ~1)));
      const ms = (pcm.length / rate) * 1000;
      conn.audioMs += ms;
      const { ended, started } = seg.push(pcm);
      if (started) turn('StartOfTurn', undefined, '');
      for (const s of ended) endTurn(s, 'model');
      sinceUpdateMs += ms;
      if (sinceUpdateMs >= UPDATE_MS) {
        sinceUpdateMs = 0;
        turn('Update', undefined, '');
      }
      return;
    }
    const type = controlType(String(data));
    if (type === 'ForceEndTurn' || type === 'CloseStream') {
      const s = seg.flush();
      if (s) endTurn(s, 'manual');
    }
    if (type === 'CloseStream') later(0, () => closeWith(1000, ''));
  });
  ws.on('close', (code) => {
    clearTimeout(idle);
    conn.closeCode ??= code;
    closed = true;
  });
}

/** A Flux `TurnInfo` (without `request_id` and `sequence_id`, added when sent). */
function turnInfo(event: string, s: VoicedSegment, text: string, turnIndex: number): Record<string, unknown> {
  return {
    type: 'TurnInfo',
    event,
    turn_index: turnIndex,
    audio_window_start: s.startMs / 1000,
    audio_window_end: s.endMs / 1000,
    transcript: text,
    words: text
      .split(/\s+/)
      .filter(Boolean)
      .map((word) => ({ word, confidence: 0.97 })),
    end_of_turn_confidence: event === 'EndOfTurn' || event === 'EagerEndOfTurn' ? 0.9 : 0.05,
  };
}

function controlType(text: string): string | undefined {
  try {
    const m: unknown = JSON.parse(text);
    return typeof m === 'object' && m !== null && 'type' in m && typeof m.type === 'string' ? m.type : undefined;
  } catch {
    return undefined;
  }
}
