/**
 * Turn-taking policy (issue 22 item 5), as pure functions and types: which of the caller's words
 * interrupt the bot, and the end-of-turn detector contract.
 *
 * - **Back-channels.** "uh-huh", "yeah", "okay" while the bot speaks are the caller listening, not
 *   taking the turn: words that are all back-channels, or fewer than `minWords`, do not interrupt.
 * - **False interruptions.** Voice with no words (a cough, a laugh, a door) pauses the bot at most
 *   for a while: with no words within `falseInterruptionMs` after the voice stops, it resumes.
 * - **End of turn.** VAD silence plus the transcript, or the provider's own endpointing
 *   (`end-of-turn` SttEvent); an `EndOfTurnDetector` (e.g. an ONNX model such as Smart Turn) may
 *   say that a pause is not the end of the caller's turn yet.
 *
 * Nothing here knows the call or the worker (docs/architecture.md); src/sdk/turns.ts applies it.
 */

/** Said while listening, not to take the turn (lower case; punctuation and case are ignored). */
export const DEFAULT_BACKCHANNELS: readonly string[] = [
  'uh-huh',
  'uh huh',
  'mm-hmm',
  'mm hmm',
  'mhm',
  'hmm',
  'mm',
  'yeah',
  'yes',
  'yep',
  'okay',
  'ok',
  'right',
  'sure',
  'i see',
  'got it',
];

/** The bot option `interruptions`: how the caller's voice and words stop an interruptible prompt. */
export interface InterruptionOptions {
  /**
   * `'words'` (default): voice alone only pauses the bot; words decide (back-channels and too few
   * words do not interrupt; no words → it resumes). `'voice'`: any voice stops the prompt at once
   * (the behaviour before issue 22).
   */
  mode?: 'words' | 'voice';
  /** Phrases that never interrupt, compared whole after lower-casing and dropping punctuation. */
  backchannels?: readonly string[];
  /** Fewer words than this (back-channels excluded) do not interrupt (default 1). */
  minWords?: number;
  /** The caller's voice has lasted this long (audio time, from its start) with no deciding words: the bot pauses (default 500; "uh-huh" is ≈ 300–450). */
  pauseAfterMs?: number;
  /** Paused (or voice heard) and no words within this after the voice stopped: a false interruption (default 1 500). */
  falseInterruptionMs?: number;
  /** After a false interruption, play the rest of the interrupted audio (default true; false: the prompt ends). */
  resume?: boolean;
}

export type ResolvedInterruptions = Required<Omit<InterruptionOptions, 'backchannels'>> & { backchannels: ReadonlySet<string> };

/** Options with their defaults; throws TypeError on nonsense (checked by defineBot). */
export function resolveInterruptions(o: InterruptionOptions = {}): ResolvedInterruptions {
  const ms = (v: number | undefined, d: number, name: string): number => {
    if (v === undefined) return d;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`interruptions.${name} must be a number of ms ≥ 0`);
    return v;
  };
  if (o.mode !== undefined && o.mode !== 'words' && o.mode !== 'voice')
    throw new TypeError("interruptions.mode must be 'words' or 'voice'");
  const minWords = o.minWords ?? 1;
  if (!Number.isInteger(minWords) || minWords < 1) throw new TypeError('interruptions.minWords must be an integer ≥ 1');
  if (o.backchannels !== undefined && (!Array.isArray(o.backchannels) || o.backchannels.some((b) => typeof b !== 'string')))
    throw new TypeError('interruptions.backchannels must be a list of phrases');
  return {
    mode: o.mode ?? 'words',
    backchannels: new Set((o.backchannels ?? DEFAULT_BACKCHANNELS).map(normalize).filter((b) => b.length > 0)),
    minWords,
    pauseAfterMs: ms(o.pauseAfterMs, 500, 'pauseAfterMs'),
    falseInterruptionMs: ms(o.falseInterruptionMs, 1_500, 'falseInterruptionMs'),
    resume: o.resume ?? true,
  };
}

/** Lower case, letters, digits, apostrophes and single spaces ("Uh-huh!" → "uh huh"). */
export function normalize(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}']+/gu, ' ')
    .trim();
}

/**
 * The words of `text` that are not back-channels: back-channel phrases (longest first, whole
 * words) are removed, the rest counted. "uh-huh yeah" → []; "yeah but wait" → ["but", "wait"].
 */
export function contentWords(text: string, backchannels: ReadonlySet<string>): string[] {
  const words = normalize(text).split(' ').filter(Boolean);
  const phrases = [...backchannels].map((b) => b.split(' ')).sort((a, b) => b.length - a.length);
  const out: string[] = [];
  for (let i = 0; i < words.length;) {
    const hit = phrases.find((p) => p.every((w, k) => words[i + k] === w));
    if (hit) {
      i += hit.length;
      continue;
    }
    out.push(words[i]!);
    i++;
  }
  return out;
}

/** Whether the caller's words (interim or final) take the turn from a speaking bot. */
export function interrupts(text: string, o: ResolvedInterruptions): boolean {
  return contentWords(text, o.backchannels).length >= o.minWords;
}

/** What an end-of-turn detector is given: the caller's turn so far. */
export interface TurnSoFar {
  /** The caller's audio since the turn began, PCM16 mono at 16 kHz (the last `maxAudioMs` of it). */
  audio16k: Int16Array;
  /** The words heard so far (finals joined). */
  text: string;
}

/**
 * Says whether the caller's turn is over, at a pause (VAD silence). `probability` ≥ the detector's
 * threshold ends the turn; below, `listen()` keeps listening for more of the same turn (bounded by
 * `maxTurnPauseMs`).
 */
export interface EndOfTurnDetector {
  /** The probability that the turn is over, 0..1. */
  endOfTurn(turn: TurnSoFar, signal?: AbortSignal): Promise<number>;
  /** At or above this the turn is over (default 0.5). */
  readonly threshold?: number;
  close?(): Promise<void>;
}
