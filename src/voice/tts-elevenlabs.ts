/**
 * ElevenLabs over its multi-context WebSocket (`/v1/text-to-speech/{voice_id}/multi-stream-input`):
 * one socket per worker (reopened when ElevenLabs closed it, e.g. after its inactivity timeout
 * between turns), one context per turn, each piece sent with `flush: true` so its audio comes at
 * once while the context keeps the prosody, `close_context` at the end of the turn (and on barge-in).
 *
 * The official `@elevenlabs/elevenlabs-js` (2.x) has no client for this socket, only its message
 * types and serialization schemas: the socket is `ws` (already a dependency) and every message is
 * written and read with the SDK's own schemas (`InitializeConnectionMulti`, `SendTextMulti`,
 * `CloseContext`, `AudioOutputMulti`, `FinalOutputMulti`), loaded on first use or at `warm()`.
 * docs/voice.md says why and cites the protocol's pages.
 */
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import type { ElevenLabs } from '@elevenlabs/elevenlabs-js';
import { errorMessage } from '../core/errors.js';
import { resample } from './resample.js';
import { EventQueue, audioOf, collect, vendorError } from './tts-stream.js';
import { TtsError, type TtsProvider, type TtsTurn, type TtsTurnEvent, type TtsWord, type TurnOptions } from './tts-types.js';

export interface ElevenLabsTtsOptions {
  apiKey: string;
  /** The API base (ELEVENLABS_BASE_URL, `https://api.elevenlabs.io` unless set); http(s) becomes ws(s). */
  baseUrl?: string | undefined;
  /** `eleven_flash_v2_5` unless set. */
  model?: string | undefined;
  voice: string;
  sampleRate: number;
  /** Seconds ElevenLabs keeps an idle socket (its `inactivity_timeout`, 20 by default, at most 180). */
  inactivityTimeoutS?: number | undefined;
  /** Extra trusted certificate (PEM), for tests in one process. */
  ca?: string | undefined;
}

type Schemas = typeof import('@elevenlabs/elevenlabs-js/serialization/index.js');

const RATES = [8000, 16000, 22050, 24000, 44100, 48000] as const;

/** The SDK's serialization schemas: the wire names of every message. */
export function loadElevenLabsSchemas(): Schemas {
  return createRequire(import.meta.url)('@elevenlabs/elevenlabs-js/serialization/index.js') as Schemas;
}

/** The socket's URL for `opts` (query: model, PCM at the rate, inactivity timeout, alignment with the audio). */
export function elevenLabsUrl(opts: ElevenLabsTtsOptions, rate: number): string {
  const base = (opts.baseUrl ?? 'https://api.elevenlabs.io').replace(/\/$/, '').replace(/^http/i, 'ws');
  const q = new URLSearchParams({ model_id: opts.model ?? 'eleven_flash_v2_5', output_format: `pcm_${rate}`, sync_alignment: 'true' });
  if (opts.inactivityTimeoutS) q.set('inactivity_timeout', String(opts.inactivityTimeoutS));
  return `${base}/v1/text-to-speech/${encodeURIComponent(opts.voice)}/multi-stream-input?${q}`;
}

interface Listener {
  message(m: ElevenLabs.WebsocketTtsServerMessageMulti & { error?: string; message?: string }): void;
  closed(err: TtsError): void;
}

export function elevenLabsTts(opts: ElevenLabsTtsOptions): TtsProvider {
  const rate = RATES.find((r) => r === opts.sampleRate) ?? 16000;
  let schemas: Schemas | undefined;
  let socket: Promise<WebSocket> | undefined;
  const turns = new Map<string, Listener>();
  const load = () => (schemas ??= loadElevenLabsSchemas());

  const connect = async (): Promise<WebSocket> => {
    const current = await socket?.catch(() => undefined);
    if (current && current.readyState === WebSocket.OPEN) return current;
    socket = openSocket(opts, rate, load(), turns);
    return socket.catch((err: unknown) => {
      socket = undefined;
      throw vendorError('ElevenLabs', err);
    });
  };

  const openTurn = (turnOpts: TurnOptions = {}): TtsTurn => {
    const out = new EventQueue<TtsTurnEvent>();
    const id = randomUUID();
    let ended = false;
    let cancelled = false;
    turns.set(
      id,
      turnListener(out, rate, opts.sampleRate, () => turns.delete(id)),
    );
    const ready = connect().then((ws) => {
      write(ws, load().InitializeConnectionMulti, { text: ' ', contextId: id });
      return ws;
    });
    ready.catch((err: unknown) => {
      turns.delete(id);
      out.fail(err);
    });
    const send = (fn: (ws: WebSocket, s: Schemas) => void) =>
      void ready.then((ws) => (cancelled ? undefined : fn(ws, load()))).catch((err: unknown) => out.fail(vendorError('ElevenLabs', err)));
    const cancel = () => {
      if (cancelled || out.isClosed) return;
      cancelled = true;
      turns.delete(id);
      out.close();
      void ready.then((ws) => write(ws, load().CloseContext, { contextId: id, closeContext: true })).catch(() => undefined);
    };
    turnOpts.signal?.addEventListener('abort', cancel, { once: true });
    return {
      push: (text) => {
        if (!ended && !cancelled && text.trim())
          send((ws, s) => write(ws, s.SendTextMulti, { text: `${text.trim()} `, contextId: id, flush: true }));
      },
      end: () => {
        if (ended) return;
        ended = true;
        send((ws, s) => write(ws, s.CloseContext, { contextId: id, closeContext: true }));
      },
      cancel,
      [Symbol.asyncIterator]: () => out[Symbol.asyncIterator](),
    };
  };
  return {
    name: 'elevenlabs',
    openTurn,
    synthesize: (text, signal) => collect(openTurn, text, signal),
    synthesizeStream: (text, signal) => audioOf(openTurn, text, signal),
    warm: async () => {
      load();
    },
    close: () => void socket?.then((ws) => ws.close(1000)).catch(() => undefined),
  };
}

/** A socket whose messages go to `turns`; closed after it opened, it fails every turn on it. */
function openSocket(opts: ElevenLabsTtsOptions, rate: number, s: Schemas, turns: Map<string, Listener>): Promise<WebSocket> {
  const ws = new WebSocket(elevenLabsUrl(opts, rate), { headers: { 'xi-api-key': opts.apiKey }, ...(opts.ca ? { ca: opts.ca } : {}) });
  ws.on('error', () => undefined);
  ws.on('message', (raw: Buffer) => route(s, raw, turns));
  // A refused upgrade rejects the promise instead (with its status).
  ws.once('open', () =>
    ws.on('close', (code: number, reason: Buffer) => {
      const why = reason.toString() || `code ${code}`;
      const err = new TtsError(`ElevenLabs closed the connection: ${why}`, {
        retryable: code !== 1008,
        status: code === 1008 ? 400 : undefined,
      });
      for (const l of [...turns.values()]) l.closed(err);
      turns.clear();
    }),
  );
  return new Promise<WebSocket>((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** What the socket hands a turn: its audio and words in order, the end (`isFinal`), or a failure. */
function turnListener(out: EventQueue<TtsTurnEvent>, rate: number, callRate: number, done: () => void): Listener {
  let audioMs = 0;
  const aligned = new AlignmentWords();
  return {
    message: (m) => {
      if (m.error) return out.fail(new TtsError(`ElevenLabs refused: ${m.error}: ${m.message ?? ''}`, { status: 400 }));
      if (m.audio) {
        const at = audioMs;
        const b = Buffer.from(m.audio, 'base64');
        const pcm = new Int16Array(b.length >> 1);
        for (let i = 0; i < pcm.length; i++) pcm[i] = b.readInt16LE(i * 2);
        audioMs += (pcm.length / rate) * 1000;
        const words = m.alignment ? aligned.feed(m.alignment, at) : [];
        if (words.length > 0) out.put({ type: 'words', words });
        out.put({ type: 'audio', pcm: resample(pcm, rate, callRate), sampleRate: callRate });
      }
      if (m.isFinal) {
        const last = aligned.flush();
        if (last.length > 0) out.put({ type: 'words', words: last });
        done();
        out.close();
      }
    },
    closed: (err) => out.fail(err),
  };
}

/** One message, in the SDK's wire shape. */
function write<T>(ws: WebSocket, schema: { jsonOrThrow(v: T): unknown }, msg: T): void {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(schema.jsonOrThrow(msg)));
}

/** A server message to the turn it belongs to (errors without a context go to every turn). */
function route(s: Schemas, raw: Buffer, turns: Map<string, Listener>): void {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString());
  } catch (err) {
    for (const l of turns.values())
      l.closed(new TtsError(`ElevenLabs sent something unreadable: ${errorMessage(err)}`, { retryable: true }));
    return;
  }
  const o = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
  const lenient = { unrecognizedObjectKeys: 'passthrough', skipValidation: true } as const;
  const parsed = o.isFinal === true ? s.FinalOutputMulti.parse(o, lenient) : s.AudioOutputMulti.parse(o, lenient);
  const m = {
    ...(parsed.ok ? parsed.value : {}),
    ...(typeof o.error === 'string' ? { error: o.error, message: String(o.message ?? '') } : {}),
  };
  const id = typeof o.contextId === 'string' ? o.contextId : typeof o.context_id === 'string' ? o.context_id : undefined;
  const targets = id ? [turns.get(id)] : m.error ? [...turns.values()] : [];
  for (const t of targets) t?.message(m);
}

/**
 * ElevenLabs' character alignment (ms from each chunk's start) as words from the turn's start. A
 * word may straddle two chunks: it is given out once the white space after it (or the end) comes.
 */
export class AlignmentWords {
  private cur: TtsWord | undefined;

  feed(a: ElevenLabs.Alignment, chunkAtMs: number): TtsWord[] {
    const done: TtsWord[] = [];
    const starts = a.charStartTimesMs ?? [];
    const durs = a.charDurationsMs ?? [];
    (a.chars ?? []).forEach((c, i) => {
      const start = chunkAtMs + (starts[i] ?? 0);
      const end = start + (durs[i] ?? 0);
      if (/\s/.test(c)) {
        if (this.cur) done.push(this.cur);
        this.cur = undefined;
        return;
      }
      this.cur ??= { word: '', startMs: start, endMs: end };
      this.cur.word += c;
      this.cur.endMs = end;
    });
    return done;
  }

  flush(): TtsWord[] {
    const last = this.cur;
    this.cur = undefined;
    return last ? [last] : [];
  }
}
