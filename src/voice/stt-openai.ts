/**
 * OpenAI speech-to-text through the official `openai` SDK (6.x): one streaming request to
 * `POST /v1/audio/transcriptions` (`stream: true`) per caller utterance, the way Pipecat's
 * `OpenAISTTService` does it. Loaded only by `loadStt` in a worker (stt-load.ts).
 *
 * OpenAI's realtime transcription socket (`/v1/realtime?intent=transcription`) would stream the
 * audio itself, but the installed `openai` 6 always adds `model=` to that URL and `openai` 7 (which
 * has `intent`) needs Node 22 (docs/voice.md). So the utterances are cut here by patchbay's Silero
 * VAD (stt-openai-utterances.ts): 16 kHz PCM16 sent as a WAV file on speech-end.
 * `transcript.text.delta` events become `interim`s (the text so far), `transcript.text.done` a
 * `final` and, unless the utterance was cut at its length cap, an `end-of-turn`; the VAD's
 * speech-start is `speech-started`.
 *
 * Requests run one at a time, in order, with at most `maxWaiting` utterances waiting (more are
 * joined to the last waiting one while that stays under the length cap; past it the stream ends
 * with a retryable error: OpenAI is slower than the caller). The SDK's own retries are off: a 429/5xx/network failure ends
 * the stream with a retryable SttError and whoever opened it reopens it (stt-resilient.ts).
 */
import OpenAI, { APIConnectionError, APIError, APIUserAbortError, toFile } from 'openai';
import { errorMessage, isRetryableStatus } from '../core/errors.js';
import { SttError, type SttEvent, type SttOptions, type SttProvider, type SttStream } from './stt.js';
import { SttEventQueue } from './stt-queue.js';
import { UTTERANCE_RATE, Utterances, type Utterance } from './stt-openai-utterances.js';
import { resample } from './tts.js';
import { encodeWav } from './wav.js';

export interface OpenAiSttInit {
  apiKey: string;
  /** OPENAI_STT_BASE_URL: `https://api.openai.com/v1` unless set. */
  baseUrl?: string;
  /** Audio kept before the VAD's speech-start (default 300 ms). */
  preRollMs?: number;
  /** An utterance longer than this is cut and sent (default 15 000 ms; OpenAI takes up to 25 MB). */
  maxUtteranceMs?: number;
  /** Utterances waiting behind the request in flight (default 3). */
  maxWaiting?: number;
  /** Per request (default 15 000 ms). */
  timeoutMs?: number;
}

export const OPENAI_STT_MODEL = 'gpt-4o-transcribe';
/** Shorter audio is refused by OpenAI (`audio_too_short`, under 0.1 s); a VAD blip is not sent. */
const MIN_SEND_MS = 150;

/** 401/403/400/404/413 are the request's or the key's fault: reopening does not help. 429, 5xx and the network may. */
export function sttErrorOf(err: unknown): SttError {
  if (err instanceof SttError) return err;
  if (err instanceof APIError && err.status !== undefined) {
    // 409 too: the openai SDK's own retry rule counts it (a lock timeout on OpenAI's side).
    const retryable = isRetryableStatus(err.status) || err.status === 409;
    return new SttError(`OpenAI transcription: ${err.message}`, { retryable, status: err.status, cause: err });
  }
  const network = err instanceof APIConnectionError;
  return new SttError(`OpenAI transcription: ${errorMessage(err)}`, { retryable: network, cause: err });
}

export function openAiStt(init: OpenAiSttInit): SttProvider {
  const client = new OpenAI({
    apiKey: init.apiKey,
    ...(init.baseUrl ? { baseURL: init.baseUrl } : {}),
    maxRetries: 0,
    timeout: init.timeoutMs ?? 15_000,
  });
  return {
    name: 'openai',
    async open(opts) {
      const model = opts.model ?? OPENAI_STT_MODEL;
      if (model.startsWith('whisper'))
        throw new SttError(`OpenAI transcription: ${model} does not stream (use gpt-4o-transcribe or gpt-4o-mini-transcribe)`);
      const stream = new OpenAiSttStream(client, { ...opts, model }, init);
      await stream.start();
      if (opts.signal?.aborted) {
        stream.abort();
        throw new SttError('OpenAI transcription: opening was cancelled', { retryable: true });
      }
      return stream;
    },
  };
}

class OpenAiSttStream implements SttStream {
  private readonly queue = new SttEventQueue();
  private readonly controller = new AbortController();
  private utterances: Utterances | undefined;
  private readonly waiting: Utterance[] = [];
  private running: Promise<void> | undefined;
  private closing = false;
  private readonly maxMs: number;

  constructor(
    private readonly client: OpenAI,
    private readonly opts: SttOptions & { model: string },
    private readonly init: OpenAiSttInit,
  ) {
    this.maxMs = init.maxUtteranceMs ?? 15_000;
  }

  async start(): Promise<void> {
    this.utterances = await Utterances.create(
      { preRollMs: this.init.preRollMs ?? 300, maxMs: this.maxMs },
      {
        speechStarted: (atMs) => this.queue.push({ type: 'speech-started', atMs }),
        utterance: (u) => this.enqueue(u),
      },
    );
  }

  write(pcm: Int16Array, sampleRate: number): void {
    if (this.queue.done || this.closing || pcm.length === 0) return;
    this.utterances?.push(resample(pcm, sampleRate, UTTERANCE_RATE));
  }

  events(): AsyncIterable<SttEvent> {
    return this.queue.iterate();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.utterances?.flush();
    while (this.running) await this.running;
    this.queue.end();
  }

  abort(): void {
    this.closing = true;
    this.waiting.length = 0;
    this.controller.abort();
    this.queue.end();
  }

  private enqueue(u: Utterance): void {
    if (this.queue.done || (u.pcm.length * 1000) / UTTERANCE_RATE < MIN_SEND_MS) return;
    const last = this.waiting.at(-1);
    if (last && this.waiting.length >= (this.init.maxWaiting ?? 3)) {
      if (((last.pcm.length + u.pcm.length) * 1000) / UTTERANCE_RATE > this.maxMs) return this.fallBehind();
      const pcm = new Int16Array(last.pcm.length + u.pcm.length);
      pcm.set(last.pcm);
      pcm.set(u.pcm, last.pcm.length);
      this.waiting[this.waiting.length - 1] = { pcm, endMs: u.endMs, endOfTurn: u.endOfTurn };
    } else {
      this.waiting.push(u);
    }
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** OpenAI answers slower than the caller speaks: end with a retryable error (the reopened stream gets the audio since the last final). */
  private fallBehind(): void {
    this.waiting.length = 0;
    this.queue.push({ type: 'error', error: new SttError('OpenAI transcription is falling behind the caller', { retryable: true }) });
    this.controller.abort();
  }

  private async drain(): Promise<void> {
    for (let u = this.waiting.shift(); u && !this.queue.done; u = this.waiting.shift()) {
      try {
        await this.transcribe(u);
      } catch (err) {
        if (err instanceof APIUserAbortError || this.controller.signal.aborted) return;
        this.waiting.length = 0;
        this.queue.push({ type: 'error', error: sttErrorOf(err) });
        this.controller.abort();
        return;
      }
    }
  }

  private async transcribe(u: Utterance): Promise<void> {
    // One signal per request, tied to the stream's: the SDK leaves its abort listener on the signal
    // it is given, and a call's utterances would pile them up on one signal for the whole call.
    const request = new AbortController();
    const abort = () => request.abort();
    this.controller.signal.addEventListener('abort', abort, { once: true });
    try {
      await this.request(u, request.signal);
    } finally {
      this.controller.signal.removeEventListener('abort', abort);
    }
  }

  private async request(u: Utterance, signal: AbortSignal): Promise<void> {
    const { language, keywords, model } = this.opts;
    const file = await toFile(encodeWav(u.pcm, UTTERANCE_RATE), 'utterance.wav', { type: 'audio/wav' });
    const events = await this.client.audio.transcriptions.create(
      {
        file,
        model,
        stream: true,
        response_format: 'json',
        ...(language ? { language: language.split('-')[0]!.toLowerCase() } : {}),
        ...(keywords?.length ? { prompt: keywords.join(', ') } : {}),
      },
      { signal },
    );
    let text = '';
    for await (const ev of events) {
      if (ev.type === 'transcript.text.delta') {
        text += ev.delta;
        if (text.trim()) this.queue.push({ type: 'interim', text: text.trim(), atMs: u.endMs });
      } else if (ev.type === 'transcript.text.done') {
        text = ev.text;
      }
    }
    const final = text.trim();
    if (!final) return;
    this.queue.push({ type: 'final', text: final, atMs: u.endMs });
    if (u.endOfTurn) this.queue.push({ type: 'end-of-turn', text: final, atMs: u.endMs });
  }
}
