/**
 * The shapes of text-to-speech (tts.ts: the one-shot providers; tts-stream.ts: turns), in a file of
 * their own so the providers' files import them without a cycle.
 */
import { PatchbayError } from '../core/errors.js';

export interface SpeechAudio {
  pcm: Int16Array;
  sampleRate: number;
}

export interface TtsProvider {
  readonly name: string;
  synthesize(text: string, signal?: AbortSignal): Promise<SpeechAudio>;
  /** Providers that can stream: audio in pieces as it is generated, so playing starts on the first. */
  synthesizeStream?(text: string, signal?: AbortSignal): AsyncIterable<SpeechAudio>;
  /**
   * Providers with vendor contexts (Cartesia, ElevenLabs): one context for a whole turn, text pushed
   * piece by piece, audio and word timestamps out (tts-stream.ts). Others get `pieceTurn`.
   */
  openTurn?(opts?: TurnOptions): TtsTurn;
  /** Loads the vendor's SDK now (a worker's start), so the first turn does not pay for it. */
  warm?(): Promise<void>;
  /** Closes the vendor connection, if one is open. */
  close?(): void;
}

/**
 * A TTS provider failed. The call goes on: a streamed `say()` falls back to espeak-ng (or text) for
 * what was not heard yet and tells the bot (`SayOptions.onError`, `Spoken.error`).
 */
export class TtsError extends PatchbayError {
  override name = 'TtsError';
  /** The vendor's HTTP status (refused upgrade or request) or error event's status code, when there was one. */
  readonly status: number | undefined;
  constructor(message: string, opts: { retryable?: boolean; cause?: unknown; status?: number | undefined } = {}) {
    super('tts_failed', message, opts);
    this.status = opts.status;
  }
}

/** A word of the turn's text and when it is spoken, in ms from the first sample of the turn's audio. */
export interface TtsWord {
  word: string;
  startMs: number;
  endMs: number;
}

/**
 * `audio`: the next PCM of the turn. `words`: word timestamps (vendors, or estimated per piece).
 * `mark`: the audio that follows begins this piece of text (turns built piece by piece only; a
 * vendor context does not say where a piece's audio begins: its words do).
 */
export type TtsTurnEvent = ({ type: 'audio' } & SpeechAudio) | { type: 'words'; words: TtsWord[] } | { type: 'mark'; text: string };

export interface TtsTurn extends AsyncIterable<TtsTurnEvent> {
  /** More text of the turn (a sentence, a clause). Ignored after `end()` or `cancel()`. */
  push(text: string): void;
  /** No more text: the vendor finishes the turn's audio, then the events end. */
  end(): void;
  /** Stops now: the vendor's context is cancelled and the events end. */
  cancel(): void;
}

export interface TurnOptions {
  /** Aborts the turn (the call ended). */
  signal?: AbortSignal;
}

/** The providers a bot may choose (`defineBot({ tts: cartesia({...}) })`); TTS_PROVIDER's values but `auto`. */
export const TTS_CHOICES = ['cartesia', 'elevenlabs', 'openai', 'espeak', 'text'] as const;
export type TtsChoiceName = (typeof TTS_CHOICES)[number];

/** A bot's speech settings; the vendor's key and base URL come from the service's environment, never the bot. */
export interface TtsOptions {
  /** The vendor's voice id (Cartesia, ElevenLabs), OpenAI's voice name, or espeak-ng's voice (`en-us`). Unset: TTS_VOICE when the service uses the same provider, else the vendor's documented example voice. */
  voice?: string;
  /** The vendor's model (`sonic-3`, `eleven_flash_v2_5`, `gpt-4o-mini-tts`). Unset: TTS_MODEL when the service uses the same provider, else the provider's default. */
  model?: string;
}

export interface TtsChoice extends TtsOptions {
  provider: TtsChoiceName;
}
