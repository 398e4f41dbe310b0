/**
 * Streaming speech-to-text: the contract every provider implements (issue 22).
 *
 * A provider opens one `SttStream` per caller (per call). PCM16 mono frames go in at the call's
 * rate (`write`); the stream resamples to what its vendor expects. Out come `SttEvent`s: interim and
 * final transcripts (words, timings and confidence where the vendor gives them), speech started,
 * end of turn (the vendor's endpointing, e.g. Deepgram's `speech_final` / `UtteranceEnd` or Flux's
 * `EndOfTurn`) and errors. Errors are `SttError`s with `retryable`: a retryable one means the
 * stream may be reopened (the caller's words since the last final are kept in a bounded buffer by
 * whoever reopens it); a non-retryable one (bad key, refused settings) means this provider is done
 * for this call.
 *
 * Nothing here knows the worker, the call or Daily (docs/architecture.md): Daily's own
 * transcription is one provider among others (`daily`), fed by the call client's
 * `transcription-message` events instead of audio.
 */
import { PatchbayError } from '../core/errors.js';

/** The providers patchbay knows (STT_PROVIDER, or per bot). */
export const STT_PROVIDERS = ['daily', 'deepgram', 'openai', 'assemblyai'] as const;
export type SttProviderName = (typeof STT_PROVIDERS)[number];

/** One recognised word, where the vendor gives words. Times are from the stream's first sample. */
export interface SttWord {
  word: string;
  startMs: number;
  endMs: number;
  confidence?: number;
}

export type SttEvent =
  /** Words so far in the current utterance; replaced by the next interim or final. */
  | { type: 'interim'; text: string; words?: SttWord[]; confidence?: number; atMs: number }
  /** A settled piece of the caller's speech. Several finals may make one turn. */
  | { type: 'final'; text: string; words?: SttWord[]; confidence?: number; atMs: number }
  /** The vendor heard speech start (where it says so). */
  | { type: 'speech-started'; atMs: number }
  /** The vendor's endpointing says the caller's turn is over (text: the whole turn, where it gives it). */
  | { type: 'end-of-turn'; text?: string; atMs: number }
  /** The stream failed; `error.retryable` tells whether reopening may help. The stream is closed. */
  | { type: 'error'; error: SttError };

/** What a bot or the environment asks of a provider. */
export interface SttOptions {
  /** BCP-47, e.g. `en-US`. */
  language?: string;
  /** Vendor model, e.g. `nova-3`, `flux-general-en`, `gpt-4o-transcribe`. */
  model?: string;
  /** Words to favour (Deepgram keyterms, AssemblyAI word boost, OpenAI prompt). */
  keywords?: string[];
}

/** One live transcription of one caller. */
export interface SttStream {
  /** PCM16 mono at `sampleRate` (the call's rate: 8 000 for phone audio, 16 000 from the emulator). */
  write(pcm: Int16Array, sampleRate: number): void;
  /** Events until the stream closes (after `close`, `abort` or an error). */
  events(): AsyncIterable<SttEvent>;
  /** Flushes what was sent (the vendor's finalize/close message) and ends the stream; resolves when closed. */
  close(): Promise<void>;
  /** Ends at once, dropping what is pending. */
  abort(): void;
}

/**
 * What a worker is given for speech-to-text (WorkerInit.stt, from STT_PROVIDER, STT_FALLBACK and the
 * vendors' keys): the service's default and what any bot may choose. Keys are never logged.
 */
export interface SttInit {
  provider: SttProviderName;
  /** When a vendor fails for good in a call: `daily` turns Daily's transcription on. */
  fallback: 'daily' | 'none';
  deepgram?: { apiKey: string; baseUrl?: string };
  assemblyai?: { apiKey: string; baseUrl?: string };
  /** OPENAI_API_KEY and OPENAI_STT_BASE_URL (request-per-utterance transcription: stt-openai.ts). */
  openai?: { apiKey: string; baseUrl?: string };
}

/** A bot's choice of provider and settings (`stt: deepgram({ model: 'nova-3', language: 'en-US' })`). */
export interface SttChoice extends SttOptions {
  provider: SttProviderName;
}

export interface SttProvider {
  readonly name: SttProviderName;
  /** Opens a stream; rejects with an SttError when the vendor refuses at start (401, bad settings). */
  open(opts: SttOptions & { signal?: AbortSignal }): Promise<SttStream>;
}

/** A speech-to-text provider failed. */
export class SttError extends PatchbayError {
  override name = 'SttError';
  /** The vendor's HTTP status or WebSocket close code, where there was one. */
  readonly status: number | undefined;
  constructor(message: string, opts: { retryable?: boolean; cause?: unknown; status?: number } = {}) {
    super('stt_failed', message, opts);
    this.status = opts.status;
  }
}
