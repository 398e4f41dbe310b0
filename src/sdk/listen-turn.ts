/**
 * `listen()` with voice activity: when the caller's turn is over (issue 22 item 5).
 *
 * The turn is every final transcript until one of:
 * - the STT provider's endpointing says so (`end-of-turn` SttEvent, e.g. Deepgram Flux's
 *   `EndOfTurn`): at once, with its text when it gives the whole turn;
 * - the VAD heard the caller stop (`minSilenceMs` of silence) and the words are in, and the
 *   end-of-turn model (when the bot has one) agrees. When it does not, `listen()` waits up to
 *   `maxTurnPauseMs` more for the caller to go on (longer while they are speaking);
 * - `timeoutMs` passes with nothing heard (null).
 * A transcript that arrives while no speech is heard (text-only callers) is a turn by itself.
 */
import type { Logger } from 'pino';
import type { TurnAudio } from '../voice/end-of-turn.js';
import type { EndOfTurnDetector } from '../voice/turns.js';
import type { Inbox } from './inbox.js';

/** After the caller stopped speaking, how long `listen()` waits for the turn's final transcript. */
export const TRANSCRIPT_AFTER_SPEECH_MS = 1_500;

export interface TurnListenerDeps {
  transcripts: Inbox<string>;
  signal: AbortSignal;
  /** The VAD hears the caller now. */
  inSpeech(): boolean;
  /** Resolves at the caller's next end of speech. */
  speechEnd(): Promise<void>;
  /** Resolves at the provider's next end of turn. */
  sttTurnEnd(): Promise<{ text?: string }>;
  /** Whether a pause after these words ends the turn (the end-of-turn model; true without one). */
  turnOver(parts: readonly string[]): Promise<boolean>;
  maxTurnPauseMs: number;
}

/** At a pause after `parts`: the bot's end-of-turn model decides (no model, or a failing one: the pause ends the turn). */
export async function askEndOfTurn(
  det: EndOfTurnDetector | undefined,
  audio: TurnAudio | undefined,
  parts: readonly string[],
  o: { signal: AbortSignal; logger: Logger; report(v: string): void },
): Promise<boolean> {
  if (!det || !audio) return true;
  try {
    const p = await det.endOfTurn({ audio16k: audio.snapshot(), text: parts.join(' ') }, o.signal);
    const over = p >= (det.threshold ?? 0.5);
    o.report(`end-of-turn ${p.toFixed(2)}${over ? '' : ' (goes on)'}`);
    return over;
  } catch (err) {
    o.logger.warn({ err }, 'the end-of-turn model failed; the pause ends the turn');
    return true;
  }
}

type Got = string | undefined | 'speech-end' | { text?: string };

export async function listenForTurn(d: TurnListenerDeps, timeoutMs: number): Promise<string | null> {
  const parts: string[] = [];
  const deadline = Date.now() + timeoutMs;
  let ended = false; // the caller stopped speaking since the turn began
  let held = false; // the end-of-turn model said the turn goes on
  let rawEnd = d.speechEnd();
  let speechEnd = rawEnd.then(() => 'speech-end' as const);
  let sttEnd: Promise<{ text?: string }> = d.sttTurnEnd();
  let askedAt = -1; // the model is asked once per words heard (a transcript and the VAD's silence may both come at one pause)
  const over = async (): Promise<boolean> => {
    if (askedAt === parts.length) return false;
    askedAt = parts.length;
    return d.turnOver(parts);
  };
  for (;;) {
    const wait = held ? d.maxTurnPauseMs : parts.length === 0 && !ended ? deadline - Date.now() : TRANSCRIPT_AFTER_SPEECH_MS;
    if (wait <= 0) break;
    const got: Got = await nextOf(d, wait, [speechEnd, sttEnd]);
    if (typeof got === 'object') {
      const text = got.text?.trim();
      if (text) return text; // the provider's whole turn
      if (parts.length > 0) break;
      sttEnd = new Promise<never>(() => undefined);
      ended = true;
      continue; // its words are still on their way
    }
    if (got === 'speech-end') {
      ended = true;
      const nextEnd = d.speechEnd(); // the next one (the same promise would loop: wait for nothing more)
      speechEnd = nextEnd === rawEnd ? new Promise<never>(() => undefined) : nextEnd.then(() => 'speech-end' as const);
      rawEnd = nextEnd;
      if (parts.length === 0) continue; // spoke, but the words are still being transcribed
      if (await over()) break;
      held = true;
      continue;
    }
    if (got === undefined) {
      if (held && d.inSpeech()) continue; // they went on after the pause: wait for their words
      break;
    }
    parts.push(got);
    if (!d.inSpeech()) {
      if (await over()) break;
      held = true;
    } else if (ended && !held) {
      break; // they spoke again after the turn's end: that is the next turn
    }
  }
  return parts.length > 0 ? parts.join(' ') : null;
}

/**
 * The next transcript within `wait`, or whichever of `others` comes first. A transcript that
 * arrives just as another wins is put back, not lost (the inbox waiter is withdrawn).
 */
async function nextOf(d: TurnListenerDeps, wait: number, others: Array<Promise<'speech-end' | { text?: string }>>): Promise<Got> {
  const iter = new AbortController();
  const next = d.transcripts.next(wait, AbortSignal.any([d.signal, iter.signal])).then((t) => ({ t }));
  try {
    const got = await Promise.race([next, ...others]);
    if (typeof got === 'object' && 't' in got) return got.t;
    // Another won: withdraw the waiter; a transcript it took meanwhile goes back to the inbox.
    iter.abort();
    void next.then(
      ({ t }) => t !== undefined && d.transcripts.pushFront(t),
      () => undefined,
    );
    return got;
  } finally {
    iter.abort();
  }
}
