/**
 * AssemblyAI Universal Streaming (v3) through the official `assemblyai` SDK (v4):
 * `client.streaming.transcriber(...)`. Loaded only by `loadStt` in a worker (stt-load.ts).
 *
 * The call's audio is resampled to 16 kHz `pcm_s16le` and sent in 100 ms messages (AssemblyAI
 * refuses messages shorter than 50 ms or longer than 1 s; call frames are 20 ms). `Turn` messages
 * map to `interim` (`end_of_turn: false`) and, at `end_of_turn`, a `final` and `end-of-turn`
 * (the SDK's types declare no listener for `SpeechStarted`, so there is no `speech-started`). The SDK's own connection retries are off
 * (`maxConnectionRetries: 0`): whoever opened the stream reopens it (stt-resilient.ts).
 */
import { AssemblyAI, type TurnEvent } from 'assemblyai';
import { errorMessage } from '../core/errors.js';
import { SttError, type SttOptions, type SttProvider, type SttStream } from './stt.js';
import { SttEventQueue } from './stt-queue.js';
import { resample } from './tts.js';

export interface AssemblyAiInit {
  apiKey: string;
  /** ASSEMBLYAI_STREAMING_URL: the v3 WebSocket, `wss://streaming.assemblyai.com/v3/ws` by default (wss only: the SDK refuses others). */
  streamingUrl?: string;
}

export const ASSEMBLYAI_RATE = 16_000;
/** 100 ms at 16 kHz: within AssemblyAI's 50–1000 ms per message. */
const CHUNK = ASSEMBLYAI_RATE / 10;
/** Close codes AssemblyAI (and its SDK) treat as permanent: bad sample rate, auth, funds, free tier, bad schema. */
const PERMANENT = new Set([4000, 4001, 4002, 4003, 4101, 3006]);

function sttErrorOf(err: unknown): SttError {
  const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number' ? err.code : undefined;
  const retryable = code === undefined ? true : !PERMANENT.has(code);
  return new SttError(`AssemblyAI: ${errorMessage(err)}${code ? ` (${code})` : ''}`, {
    retryable,
    ...(code ? { status: code } : {}),
    cause: err,
  });
}

export function assemblyAiStt(init: AssemblyAiInit): SttProvider {
  const client = new AssemblyAI({ apiKey: init.apiKey });
  return {
    name: 'assemblyai',
    async open(opts) {
      const transcriber = client.streaming.transcriber({
        ...(init.streamingUrl ? { websocketBaseUrl: init.streamingUrl } : {}),
        sampleRate: ASSEMBLYAI_RATE,
        encoding: 'pcm_s16le',
        formatTurns: true,
        ...(opts.keywords?.length ? { keytermsPrompt: opts.keywords } : {}),
        ...(opts.model ? { speechModel: opts.model as 'universal-streaming-english' } : {}),
        ...(opts.language && !opts.language.toLowerCase().startsWith('en') ? { languageCodes: [opts.language.split('-')[0]!] } : {}),
        maxConnectionRetries: 0,
        connectTimeout: 10_000,
      });
      return openStream(transcriber, opts);
    },
  };
}

type Transcriber = ReturnType<AssemblyAI['streaming']['transcriber']>;

async function openStream(t: Transcriber, opts: SttOptions & { signal?: AbortSignal }): Promise<SttStream> {
  const queue = new SttEventQueue();
  let closing = false;
  let pending = new Int16Array(0);
  t.on('turn', (e: TurnEvent) => onTurn(queue, e));
  t.on('error', (err: Error) => {
    if (!queue.done) queue.push({ type: 'error', error: sttErrorOf(err) });
  });
  t.on('close', (code: number, reason: string) => {
    if (closing || code === 1000) return queue.end();
    queue.push({ type: 'error', error: sttErrorOf(Object.assign(new Error(reason || 'the stream closed'), { code })) });
  });
  const onAbort = () => void t.close(false).catch(() => undefined);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await t.connect();
  } catch (err) {
    await t.close(false).catch(() => undefined);
    throw sttErrorOf(err);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  return {
    write(pcm, sampleRate) {
      if (queue.done || closing) return;
      const at = resample(pcm, sampleRate, ASSEMBLYAI_RATE);
      const all = new Int16Array(pending.length + at.length);
      all.set(pending);
      all.set(at, pending.length);
      pending = all.slice(all.length - (all.length % CHUNK));
      try {
        for (let off = 0; off + CHUNK <= all.length; off += CHUNK) t.sendAudio(all.slice(off, off + CHUNK).buffer);
      } catch (err) {
        // The socket closed under us: its close event reports why.
        if (!queue.done) queue.push({ type: 'error', error: sttErrorOf(err) });
      }
    },
    events: () => queue.iterate(),
    async close() {
      if (closing) return;
      closing = true;
      await t.close(true, 3_000).catch(() => undefined);
      queue.end();
    },
    abort() {
      closing = true;
      void t.close(false).catch(() => undefined);
      queue.end();
    },
  };
}

function onTurn(queue: SttEventQueue, e: TurnEvent): void {
  const text = e.transcript.trim();
  if (!text) return;
  const words = e.words.map((w) => ({ word: w.text, startMs: w.start, endMs: w.end, confidence: w.confidence }));
  const atMs = words.at(-1)?.endMs ?? 0;
  if (!e.end_of_turn) return queue.push({ type: 'interim', text, words, atMs });
  queue.push({ type: 'final', text, words, atMs, confidence: e.end_of_turn_confidence });
  queue.push({ type: 'end-of-turn', text, atMs });
}
