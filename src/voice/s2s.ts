/**
 * Speech-to-speech (issue 23 item 4): one model hears the caller's audio and answers with audio of
 * its own (OpenAI's Realtime API, Gemini Live). This is the contract every provider implements;
 * the pipeline that plays the model's audio, handles barge-in and runs the tools is
 * src/sdk/realtime.ts.
 *
 * A provider opens one `S2sSession` per call. The caller's PCM16 frames go in at the call's rate
 * (`sendAudio`; the session resamples to what its model takes, 24 kHz for OpenAI, 16 kHz for
 * Gemini). Out come `S2sEvent`s: the model's audio (PCM16 with the model's item id), the transcript
 * of that audio, the model's own voice activity detection (speech started / stopped: the caller
 * barged in, the caller's turn is over), tool calls, the end of each response, and one fatal error.
 *
 * Nothing here knows the call or the worker (docs/architecture.md).
 */
import { PatchbayError } from '../core/errors.js';

/** The speech-to-speech vendors patchbay knows. */
export const S2S_PROVIDERS = ['openai', 'gemini'] as const;
export type S2sProviderName = (typeof S2S_PROVIDERS)[number];

/** A function the model may call (JSON Schema arguments). */
export interface S2sToolSpec {
  name: string;
  description?: string;
  parameters: Record<string, unknown>;
}

export interface S2sOptions {
  /** The vendor's model (`gpt-realtime`, `gemini-2.5-flash-native-audio-preview-09-2025`). */
  model: string;
  /** The model's voice (`alloy`, `marin`; Gemini: `Puck`, `Kore`). */
  voice?: string;
  /** The system prompt. */
  instructions?: string;
  tools?: S2sToolSpec[];
  /** Server VAD: silence that ends the caller's turn (OpenAI `silence_duration_ms`, default 500). */
  silenceMs?: number;
}

export type S2sEvent =
  /** The model's VAD heard the caller start speaking (interrupt what plays). */
  | { type: 'speech-started'; atMs: number }
  /** The model's VAD says the caller's turn is over (its answer follows). */
  | { type: 'speech-stopped'; atMs: number }
  /** Audio of the model's answer; `itemId` names the answer for truncation. */
  | { type: 'audio'; itemId: string; pcm: Int16Array; sampleRate: number }
  /** Words of the answer's audio, as they come. */
  | { type: 'transcript'; itemId: string; delta: string }
  /** The model calls a tool; its result goes back with `toolResults`. */
  | { type: 'tool-call'; callId: string; name: string; args: string }
  /** A response is over (completed, cancelled by a barge-in, or failed). */
  | { type: 'response-done'; status: string }
  /** The vendor reported a problem the session survives (an `error` event that leaves it open). */
  | { type: 'warning'; message: string }
  /** The session failed for good (disconnect, rate limit, bad key); it is closed. */
  | { type: 'error'; error: S2sError };

/** One live conversation with the model. */
export interface S2sSession {
  /** The vendor's id of this session (OpenAI's `session.id`), when it gives one. */
  readonly id: string | undefined;
  /** The caller's PCM16 mono at `sampleRate` (resampled to the model's rate). */
  sendAudio(pcm: Int16Array, sampleRate: number): void;
  /** Text from the caller's side (DTMF keys, a note); the model answers it. */
  sendText(text: string): void;
  /** Asks the model to speak now (a greeting), with these instructions for this response. */
  respond(instructions?: string): void;
  /** The results of the tool calls of the last response; the model then goes on. */
  toolResults(results: Array<{ callId: string; name: string; output: string }>): void;
  /** The caller heard only `audioEndMs` of item `itemId` (barge-in): the model forgets the rest. */
  truncate(itemId: string, audioEndMs: number): void;
  close(): void;
}

export interface S2sProvider {
  readonly name: S2sProviderName;
  /**
   * Opens a session: resolves once the vendor accepted the settings. Rejects with an S2sError
   * when it refuses (bad key, rate limit, refused settings); `onEvent` gets everything after.
   */
  open(opts: S2sOptions & { onEvent: (ev: S2sEvent) => void; signal?: AbortSignal }): Promise<S2sSession>;
}

/** What a worker is given for speech-to-speech (WorkerInit.realtime): the vendors' keys and bases. Never logged. */
export interface S2sInit {
  openai?: { apiKey: string; baseUrl?: string };
  gemini?: { apiKey: string; baseUrl?: string };
  /** VOICE_PIPELINE: the vendor bots offering both pipelines (`onCall` and `realtime`) run on. Absent → their `onCall`. */
  pipeline?: S2sProviderName;
}

/** A speech-to-speech vendor failed. */
export class S2sError extends PatchbayError {
  override name = 'S2sError';
  /** The vendor's HTTP status or WebSocket close code, where there was one. */
  readonly status: number | undefined;
  /** The vendor's error code (`invalid_api_key`, `rate_limit_exceeded`), where it gave one. */
  readonly vendorCode: string | undefined;
  constructor(message: string, opts: { retryable?: boolean; cause?: unknown; status?: number; vendorCode?: string } = {}) {
    super('s2s_failed', message, opts);
    this.status = opts.status;
    this.vendorCode = opts.vendorCode;
  }
}

/** PCM16 little-endian bytes of samples, and back. */
export function pcmToBase64(pcm: Int16Array): string {
  return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).toString('base64');
}
export function base64ToPcm(b64: string): Int16Array {
  const buf = Buffer.from(b64, 'base64');
  const out = new Int16Array(Math.floor(buf.length / 2));
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(i * 2);
  return out;
}
