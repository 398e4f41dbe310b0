/**
 * Turn-taking while the bot speaks (issue 22 item 5): who may interrupt an interruptible prompt,
 * and when it resumes. The policy (which words count) is src/voice/turns.ts; this is its state
 * machine over the caller's voice (VAD), words (interim and final transcripts) and keys.
 *
 *   voice starts ─┬─ words that interrupt (interim or final) ───────────────▶ interrupted (prompt ends)
 *                 ├─ voice lasts `pauseAfterMs` (audio time) with no such words ─▶ paused (bot silent)
 *                 │     ├─ words that interrupt ───────────────────────▶ interrupted
 *                 │     └─ back-channel final, or no words within
 *                 │        `falseInterruptionMs` after the voice stopped ─▶ resumed where it stopped
 *                 └─ back-channel final, or the voice stops and no words follow ─▶ nothing (it kept playing)
 *
 * A key (DTMF) interrupts at once. With `mode: 'voice'` any voice interrupts at once (the old rule).
 * Back-channel transcripts heard while a prompt plays are not the caller's turn: they are reported
 * but not given to `listen()` — unless the prompt ended within 1.5 s after one (a "yes" said over
 * the end of a question is the answer).
 */
import { PatchbayError } from '../core/errors.js';
import type { AudioOut } from '../daily/call-client.js';
import { interrupts, resolveInterruptions, type InterruptionOptions, type ResolvedInterruptions } from '../voice/turns.js';
import { deferred } from './inbox.js';
import type { SttEvent } from '../voice/stt.js';

type Decision = 'resume' | 'interrupt';

/** Text-only audio (the emulator's): its play-out estimate, as the emulator computes it (src/emulator/client.ts). */
const TEXT_MS_PER_CHAR = 60;

export interface TurnTakingDeps {
  /** A turn event for the call's timeline: `paused`, `resumed`, `interrupted`, `backchannel: …`. */
  report(value: string): void;
  /** A back-channel said just before the prompt ended is the caller's answer after all ("…is that right?" "yes"): give it to listen(). */
  keep(text: string): void;
}

/** A back-channel heard this close to the prompt's end is kept as the caller's answer. */
const ANSWER_NEAR_END_MS = 1_500;

export class TurnTaking {
  readonly opts: ResolvedInterruptions;
  /** Stops of the interruptible prompts playing now. */
  private readonly stops = new Set<() => void>();
  /** Segments of audio being played by interruptible prompts: a pause aborts them. */
  private readonly segments = new Set<AbortController>();
  /** Set while paused: resolves with what happens next. */
  private gate: ReturnType<typeof deferred<Decision>> | undefined;
  /** The caller's voice was heard during a prompt, and the words have not decided yet. */
  private pending = false;
  private falseTimer: NodeJS.Timeout | undefined;
  /** The last back-channel said over the prompt: kept if the prompt ends soon after it. */
  private held: { text: string; at: number } | undefined;

  constructor(
    private readonly deps: TurnTakingDeps,
    opts: InterruptionOptions = {},
  ) {
    this.opts = resolveInterruptions(opts);
  }

  /** An interruptible prompt starts; `stop` ends it (barge-in). Returns the unregister function. */
  register(stop: () => void): () => void {
    this.stops.add(stop);
    return () => {
      this.stops.delete(stop);
      if (this.stops.size > 0) return;
      this.settle();
      const held = this.held;
      this.held = undefined;
      if (held && Date.now() - held.at <= ANSWER_NEAR_END_MS) this.deps.keep(held.text);
    };
  }

  /** Something is playing that the caller may interrupt. */
  get speaking(): boolean {
    return this.stops.size > 0;
  }

  get paused(): boolean {
    return this.gate !== undefined;
  }

  /** A key: interrupts at once. */
  key(): void {
    this.interrupt('key');
  }

  /** The VAD heard the caller start speaking. */
  voiceStart(): void {
    clearTimeout(this.falseTimer);
    if (!this.speaking) return;
    if (this.opts.mode === 'voice') return this.interrupt('voice');
    this.pending = true;
  }

  /** The caller's voice has lasted `voicedMs` so far (audio time, from the VAD): long enough, and still no words, pauses the bot. */
  voiceLasted(voicedMs: number): void {
    if (this.pending && voicedMs >= this.opts.pauseAfterMs) this.pause();
  }

  /** The VAD heard the caller stop: with no words within `falseInterruptionMs`, it was not an interruption. */
  voiceEnd(): void {
    if (!this.pending && !this.gate) return;
    clearTimeout(this.falseTimer);
    this.falseTimer = setTimeout(() => this.falseInterruption(), this.opts.falseInterruptionMs);
  }

  /**
   * The caller's words (interim or final). Returns false when they are a back-channel said over a
   * prompt (not the caller's turn: `listen()` does not get them), true otherwise.
   */
  words(text: string, final: boolean): boolean {
    if (!this.speaking && !this.gate) return true;
    if (interrupts(text, this.opts)) {
      this.held = undefined;
      this.interrupt(`words: ${text}`);
      return true;
    }
    if (!final) return false;
    this.deps.report(`backchannel: ${text}`);
    this.held = { text, at: Date.now() };
    if (this.gate) this.decide('resume');
    this.settle();
    return false;
  }

  /**
   * Plays `audio` with `send`, pausable: a pause stops the play-out and remembers where; a resume
   * plays the rest (`continues`: no new words); an interruption (or `signal`) rejects.
   */
  async play(audio: AudioOut, signal: AbortSignal, send: (a: AudioOut, s: AbortSignal) => Promise<void>): Promise<void> {
    let offsetMs = 0;
    for (;;) {
      if (this.gate && (await waitGate(this.gate.promise, signal)) === 'interrupt') throw bargeIn();
      const rest = offsetMs === 0 ? audio : remainder(audio, offsetMs);
      if (!rest) return;
      const seg = new AbortController();
      this.segments.add(seg);
      const t0 = Date.now();
      try {
        await send(rest, AbortSignal.any([signal, seg.signal]));
        return;
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? err; // interrupted (or the call ended) meanwhile
        if (!seg.signal.aborted) throw err;
        offsetMs += Date.now() - t0;
      } finally {
        this.segments.delete(seg);
      }
    }
  }

  /** Ends every timer (call over). */
  close(): void {
    clearTimeout(this.falseTimer);
    this.decide('interrupt');
  }

  private pause(): void {
    if (!this.pending || !this.speaking || this.gate) return;
    this.gate = deferred<Decision>();
    this.deps.report('paused');
    for (const s of [...this.segments]) s.abort(new PatchbayError('paused', 'the caller spoke over the prompt'));
  }

  private falseInterruption(): void {
    const wasPaused = this.gate !== undefined;
    this.pending = false;
    if (!wasPaused) return;
    if (this.opts.resume) {
      this.deps.report('resumed');
      this.decide('resume');
    } else {
      this.interrupt('no words');
    }
  }

  private interrupt(why: string): void {
    clearTimeout(this.falseTimer);
    this.pending = false;
    if (!this.speaking && !this.gate) return;
    this.deps.report(`interrupted (${why})`);
    this.decide('interrupt');
    for (const stop of [...this.stops]) stop();
  }

  private decide(d: Decision): void {
    const g = this.gate;
    this.gate = undefined;
    g?.resolve(d);
  }

  /** Nothing more to decide (the prompt ended, or a back-channel settled it). */
  private settle(): void {
    clearTimeout(this.falseTimer);
    this.pending = false;
  }
}

export function bargeIn(): PatchbayError {
  return new PatchbayError('barge_in', 'the caller interrupted the prompt');
}

function waitGate(gate: Promise<Decision>, signal: AbortSignal): Promise<Decision> {
  if (signal.aborted) return Promise.resolve('interrupt');
  return new Promise((resolve) => {
    const onAbort = (): void => resolve('interrupt');
    signal.addEventListener('abort', onAbort, { once: true });
    void gate.then((d) => {
      signal.removeEventListener('abort', onAbort);
      resolve(d);
    });
  });
}

/** The audio after its first `offsetMs` (undefined when nothing is left): more of the same words. */
export function remainder(audio: AudioOut, offsetMs: number): AudioOut | undefined {
  if (audio.pcm.length > 0) {
    const start = Math.floor((offsetMs * audio.sampleRate) / 1000);
    if (start >= audio.pcm.length) return undefined;
    return { pcm: audio.pcm.subarray(start), sampleRate: audio.sampleRate, continues: true };
  }
  const total = audio.durationMs ?? (audio.text?.trim().length ?? 0) * TEXT_MS_PER_CHAR;
  const left = total - offsetMs;
  if (left < 20) return undefined;
  return { pcm: audio.pcm, sampleRate: audio.sampleRate, ...(audio.text ? { text: audio.text } : {}), continues: true, durationMs: left };
}

/** What a call session takes from a speech-to-text stream (src/sdk/session.ts). */
export interface SttFeeds {
  pushTranscript(text: string): void;
  pushInterim(text: string): void;
  pushEndOfTurn(text?: string): void;
}

/**
 * Routes one SttEvent of a streaming provider to the session (for the worker's STT routing):
 * finals and interims to turn-taking and `listen()`, the provider's end of turn to `listen()`.
 * `speech-started` and errors are the router's business (the VAD hears speech; errors reconnect).
 */
export function feedStt(session: SttFeeds, ev: SttEvent): void {
  if (ev.type === 'final') {
    if (ev.text.trim()) session.pushTranscript(ev.text);
  } else if (ev.type === 'interim') {
    if (ev.text.trim()) session.pushInterim(ev.text);
  } else if (ev.type === 'end-of-turn') {
    session.pushEndOfTurn(ev.text);
  }
}
