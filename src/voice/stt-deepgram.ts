/**
 * Deepgram live streaming (`/v1/listen`, nova-3 by default; Flux on `/v2/listen` for `flux-*` models)
 * through the official `@deepgram/sdk` (v5).
 * Loaded only by `loadStt` in a worker (stt-load.ts): nothing else imports this file.
 *
 * The call's audio is resampled to 16 kHz linear16 mono; interim results, endpointing (300 ms),
 * `utterance_end_ms` (1 000) and VAD events are on; keywords go as `keyterm` (nova-3 refuses
 * `keywords`). A `KeepAlive` goes every 4 s without audio, so a quiet line is not closed for
 * NET-0001. The SDK's own reconnection is off (`reconnectAttempts: 0`): whoever opened the stream
 * reopens it on a retryable error and re-sends its buffered audio (stt-resilient.ts).
 */
import { DeepgramClient } from '@deepgram/sdk';
import { errorMessage } from '../core/errors.js';
import { SttError, type SttEvent, type SttOptions, type SttProvider, type SttStream, type SttWord } from './stt.js';
import { SttEventQueue } from './stt-queue.js';
import { resample } from './tts.js';

export interface DeepgramInit {
  apiKey: string;
  /** DEEPGRAM_BASE_URL: `https://api.deepgram.com` by default; `http://host:port` means plain ws:// for the socket. */
  baseUrl?: string;
}

/** Deepgram's rate for our stream: the call's audio is resampled to it. */
export const DEEPGRAM_RATE = 16_000;
const KEEPALIVE_MS = 4_000;
const CLOSE_WAIT_MS = 3_000;

/** The SDK's environment for a base URL: REST at it, live sockets at its ws:// or wss:// twin. */
function environmentFor(baseUrl: string): { base: string; production: string; agent: string; agentRest: string } {
  const base = baseUrl.replace(/\/+$/, '');
  const ws = base.replace(/^http(s?):/i, (_m, s: string) => `ws${s}:`);
  return { base, production: ws, agent: ws, agentRest: base };
}

/** The HTTP status in the ws library's refusal ("Unexpected server response: 401"). */
function statusOf(message: string): number | undefined {
  const m = /server response: (\d{3})/.exec(message);
  return m ? Number(m[1]) : undefined;
}

function refusal(message: string): SttError {
  const status = statusOf(message);
  const retryable = status === undefined || status === 429 || status >= 500;
  const what = status === 401 ? 'refused the key (401)' : status ? `refused the stream (${status})` : `could not be reached: ${message}`;
  return new SttError(`Deepgram ${what}`, { retryable, ...(status ? { status } : {}) });
}

export function deepgramStt(init: DeepgramInit): SttProvider {
  const client = new DeepgramClient({ apiKey: init.apiKey, ...(init.baseUrl ? { environment: environmentFor(init.baseUrl) } : {}) });
  return {
    name: 'deepgram',
    async open(opts) {
      if (opts.model?.startsWith('flux')) return openFlux(client, opts);
      const socket = await client.listen.v1.connect({
        model: opts.model ?? 'nova-3',
        ...(opts.language ? { language: opts.language } : {}),
        encoding: 'linear16',
        sample_rate: DEEPGRAM_RATE,
        channels: 1,
        interim_results: 'true',
        endpointing: 300,
        utterance_end_ms: 1_000,
        vad_events: 'true',
        smart_format: 'true',
        ...(opts.keywords?.length ? { keyterm: opts.keywords } : {}),
        reconnectAttempts: 0,
        connectionTimeoutInSeconds: 10,
        ...(opts.signal ? { abortSignal: opts.signal } : {}),
      });
      return openStream(v1Socket(socket), onMessage);
    },
  };
}

type V1Socket = Awaited<ReturnType<DeepgramClient['listen']['v1']['connect']>>;
type V2Socket = Awaited<ReturnType<DeepgramClient['listen']['v2']['connect']>>;

/** What the stream needs of a live socket, /v1/listen's or Flux's /v2/listen's. */
interface LiveSocket {
  onMessage(cb: (m: unknown) => void): void;
  onClose(cb: (e: { code: number; reason?: unknown }) => void): void;
  onError(cb: (err: unknown) => void): void;
  connect(): void;
  waitForOpen(): Promise<unknown>;
  close(): void;
  readonly readyState: number;
  sendMedia(b: Uint8Array): void;
  sendCloseStream(): void;
  /** Keeps a quiet stream open: `KeepAlive` on /v1; Flux has no such message, so 100 ms of silence. */
  keepAlive(): void;
}

function v1Socket(s: V1Socket): LiveSocket {
  return {
    onMessage: (cb) => s.on('message', cb),
    onClose: (cb) => s.on('close', cb),
    onError: (cb) => s.on('error', cb),
    connect: () => s.connect(),
    waitForOpen: () => s.waitForOpen(),
    close: () => s.close(),
    get readyState() {
      return s.readyState;
    },
    sendMedia: (b) => s.sendMedia(b),
    sendCloseStream: () => s.sendCloseStream({ type: 'CloseStream' }),
    keepAlive: () => s.sendKeepAlive({ type: 'KeepAlive' }),
  };
}

function v2Socket(s: V2Socket): LiveSocket {
  const silence = new Uint8Array((DEEPGRAM_RATE / 10) * 2);
  return {
    onMessage: (cb) => s.on('message', cb),
    onClose: (cb) => s.on('close', cb),
    onError: (cb) => s.on('error', cb),
    connect: () => s.connect(),
    waitForOpen: () => s.waitForOpen(),
    close: () => s.close(),
    get readyState() {
      return s.readyState;
    },
    sendMedia: (b) => s.sendMedia(b),
    sendCloseStream: () => s.sendCloseStream({ type: 'CloseStream' }),
    keepAlive: () => s.sendMedia(silence),
  };
}

interface StreamState {
  turnOpen: boolean;
  closing: boolean;
  lastAudioAt: number;
}

async function openStream(socket: LiveSocket, onMessage: (q: SttEventQueue, st: StreamState, m: unknown) => void): Promise<SttStream> {
  const queue = new SttEventQueue();
  const state: StreamState = { turnOpen: false, closing: false, lastAudioAt: Date.now() };
  const timers: { keepAlive?: NodeJS.Timeout } = {};
  socket.onMessage((m) => onMessage(queue, state, m));
  socket.onClose((e) => {
    clearInterval(timers.keepAlive);
    if (state.closing || e.code === 1000) return queue.end();
    const reason = typeof e.reason === 'string' && e.reason ? `: ${e.reason}` : '';
    queue.push({
      type: 'error',
      error: new SttError(`Deepgram closed the stream (${e.code}${reason})`, { retryable: e.code !== 1008, status: e.code }),
    });
  });
  socket.onError((err) => {
    if (!queue.done)
      queue.push({ type: 'error', error: new SttError(`Deepgram stream failed: ${errorMessage(err)}`, { retryable: true }) });
  });
  socket.connect();
  try {
    await socket.waitForOpen();
  } catch (err) {
    socket.close();
    throw refusal(errorMessage(err));
  }
  const keepAlive = setInterval(() => {
    if (Date.now() - state.lastAudioAt < KEEPALIVE_MS || socket.readyState !== 1) return;
    try {
      socket.keepAlive();
    } catch {
      // closing
    }
  }, KEEPALIVE_MS);
  keepAlive.unref();
  timers.keepAlive = keepAlive;
  return {
    write(pcm, sampleRate) {
      if (queue.done || state.closing || socket.readyState !== 1) return;
      const at = resample(pcm, sampleRate, DEEPGRAM_RATE);
      state.lastAudioAt = Date.now();
      socket.sendMedia(new Uint8Array(at.buffer, at.byteOffset, at.byteLength));
    },
    events: () => queue.iterate(),
    async close() {
      if (state.closing) return;
      state.closing = true;
      clearInterval(keepAlive);
      if (socket.readyState === 1) {
        const closed = new Promise<void>((r) => socket.onClose(() => r()));
        socket.sendCloseStream();
        await Promise.race([closed, new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
      }
      socket.close();
      queue.end();
    },
    abort() {
      state.closing = true;
      clearInterval(keepAlive);
      socket.close();
      queue.end();
    },
  };
}

/** Flux (`/v2/listen`): Deepgram's model decides the end of the turn (`TurnInfo` `EndOfTurn`). */
async function openFlux(client: DeepgramClient, opts: SttOptions & { signal?: AbortSignal }): Promise<SttStream> {
  const socket = await client.listen.v2.connect({
    model: opts.model ?? 'flux-general-en',
    encoding: 'linear16',
    sample_rate: DEEPGRAM_RATE,
    ...(opts.keywords?.length ? { keyterm: opts.keywords } : {}),
    reconnectAttempts: 0,
    connectionTimeoutInSeconds: 10,
    ...(opts.signal ? { abortSignal: opts.signal } : {}),
  });
  return openStream(v2Socket(socket), onFluxMessage);
}

interface FluxTurnInfo {
  type: 'TurnInfo';
  event: string;
  audio_window_start: number;
  audio_window_end: number;
  transcript: string;
}

function onFluxMessage(queue: SttEventQueue, _state: StreamState, m: unknown): void {
  if (typeof m !== 'object' || m === null || !('type' in m)) return;
  if (m.type === 'Error') {
    const { code, description } = m as { code?: unknown; description?: unknown };
    return queue.push({
      type: 'error',
      error: new SttError(`Deepgram Flux error ${String(code)}: ${String(description)}`, { retryable: true }),
    });
  }
  if (m.type !== 'TurnInfo') return;
  const t = m as FluxTurnInfo;
  const text = t.transcript.trim();
  const atMs = t.audio_window_end * 1000;
  if (t.event === 'StartOfTurn') queue.push({ type: 'speech-started', atMs: t.audio_window_start * 1000 });
  if (t.event === 'EndOfTurn') {
    if (text) queue.push({ type: 'final', text, atMs });
    queue.push({ type: 'end-of-turn', ...(text ? { text } : {}), atMs });
  } else if (text) {
    queue.push({ type: 'interim', text, atMs });
  }
}

function onMessage(queue: SttEventQueue, state: StreamState, m: unknown): void {
  if (typeof m !== 'object' || m === null || !('type' in m)) return;
  const msg = m as { type: string } & Record<string, unknown>;
  if (msg.type === 'Results') return onResults(queue, state, msg as unknown as DeepgramResults);
  if (msg.type === 'SpeechStarted') return queue.push({ type: 'speech-started', atMs: Number(msg.timestamp) * 1000 });
  if (msg.type === 'UtteranceEnd' && state.turnOpen) {
    state.turnOpen = false;
    queue.push({ type: 'end-of-turn', atMs: Number(msg.last_word_end) * 1000 });
  }
}

interface DeepgramResults {
  start: number;
  duration: number;
  is_final?: boolean;
  speech_final?: boolean;
  channel: {
    alternatives: Array<{
      transcript: string;
      confidence: number;
      words?: Array<{ word: string; punctuated_word?: string; start: number; end: number; confidence: number }>;
    }>;
  };
}

function onResults(queue: SttEventQueue, state: StreamState, r: DeepgramResults): void {
  const alt = r.channel.alternatives[0];
  const text = alt?.transcript.trim() ?? '';
  const atMs = (r.start + r.duration) * 1000;
  if (text) {
    const words: SttWord[] = (alt?.words ?? []).map((w) => ({
      word: w.punctuated_word ?? w.word,
      startMs: w.start * 1000,
      endMs: w.end * 1000,
      confidence: w.confidence,
    }));
    const ev: SttEvent = { type: r.is_final ? 'final' : 'interim', text, words, atMs, ...(alt ? { confidence: alt.confidence } : {}) };
    queue.push(ev);
    if (r.is_final) state.turnOpen = true;
  }
  if (r.is_final && r.speech_final && state.turnOpen) {
    state.turnOpen = false;
    queue.push({ type: 'end-of-turn', atMs });
  }
}
