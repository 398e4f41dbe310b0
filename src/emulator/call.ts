/**
 * One emulated phone call: the caller's side (state, transcript, script) of a pinless dial-in.
 * The room side (participants, events to bots) lives in core.ts, reached through `CallHost`.
 */
import type { SpeechOptions } from './speech.js';
import type { Timers } from './timers.js';
import type { CallEnd, CallerStep, CallEventMap, CallState, EmulatedCall, EndReason, TranscriptLine, WebhookRecord } from './types.js';

/** What a call needs from the emulator core. */
export interface CallHost {
  readonly timers: Timers;
  readonly dtmfGapMs: number;
  /**
   * The caller said something while connected: out loud to the bots that receive audio (then the
   * words, as Daily's transcription sends them), else the words at once.
   */
  callerSpoke(call: CallImpl, text: string, opts?: SpeechOptions): Promise<void>;
  /** The caller says something out loud (audio, then the words); resolves when the speech is over. */
  /** `opts.words` false: a sound with no words (no transcript follows). */
  callerSpeaks(call: CallImpl, text: string, opts?: SpeechOptions): Promise<void>;
  /** The caller pressed one DTMF digit while connected. */
  callerPressed(call: CallImpl, tone: string): void;
  /** The call ended (any reason): take the caller out of its room, free its endpoint. */
  callEnded(call: CallImpl, reason: EndReason): void;
}

const DEFAULT_WAIT_FOR_TIMEOUT_MS = 30_000;

export class CallImpl implements EmulatedCall {
  private _state: CallState = 'held';
  private _reason: EndReason | undefined;
  private readonly lines: TranscriptLine[] = [];
  private readonly listeners = new Map<keyof CallEventMap, Set<(p: unknown) => void>>();
  private resolveEnded!: (e: CallEnd) => void;
  readonly ended: Promise<CallEnd>;
  readonly startedAt = Date.now();
  /** Index in `lines` after which `waitFor: 'say'` looks for bot lines. */
  private sayCursor = 0;

  webhook: WebhookRecord | undefined;
  sessionId: string | undefined;
  /** Set while a pinlessCallUpdate is being carried out and once connected. */
  roomName: string | undefined;
  sipEndpoint: string | undefined;
  /** Cancels the hold timeout, the pending connect, etc. */
  readonly cancels = new Set<() => void>();

  constructor(
    private readonly host: CallHost,
    readonly id: string,
    readonly callId: string,
    readonly callDomain: string,
    readonly to: string,
    readonly from: string,
    readonly sipHeaders: Record<string, string>,
  ) {
    this.ended = new Promise((r) => {
      this.resolveEnded = r;
    });
  }

  get state(): CallState {
    return this._state;
  }
  get reason(): EndReason | undefined {
    return this._reason;
  }
  get transcript(): readonly TranscriptLine[] {
    return this.lines;
  }

  on<E extends keyof CallEventMap>(event: E, fn: (payload: CallEventMap[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    const l = fn as (p: unknown) => void;
    set.add(l);
    return () => set.delete(l);
  }

  private emit<E extends keyof CallEventMap>(event: E, payload: CallEventMap[E]): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) {
      try {
        l(payload);
      } catch {
        // listeners' failures are theirs
      }
    }
  }

  addLine(who: TranscriptLine['who'], text: string): void {
    const line: TranscriptLine = { atMs: Date.now() - this.startedAt, who, text };
    this.lines.push(line);
    this.emit('transcript', line);
  }

  isEnded(): boolean {
    return this._state === 'ended';
  }

  /** Held → connected (called by the core once patched into a room). */
  markConnected(sessionId: string): void {
    if (this._state !== 'held') return;
    this.sessionId = sessionId;
    this._state = 'connected';
    this.emit('state', 'connected');
  }

  /** Ends the call once; idempotent. */
  end(reason: EndReason): void {
    if (this._state === 'ended') return;
    this._state = 'ended';
    this._reason = reason;
    for (const c of [...this.cancels]) c();
    this.cancels.clear();
    this.host.callEnded(this, reason);
    this.addLine('system', `call ended (${reason})`);
    this.emit('state', 'ended');
    const end: CallEnd = { reason, transcript: [...this.lines] };
    this.emit('ended', end);
    this.resolveEnded(end);
    this.listeners.clear();
  }

  /** The bot's audio reached the caller. */
  botSaid(text: string): void {
    if (this._state !== 'connected') return;
    this.addLine('bot', text);
  }

  /** Another phone participant of the room said something this one may hear. */
  peerSaid(text: string): void {
    if (this._state !== 'connected') return;
    this.addLine('peer', text);
  }

  /** Says `text`: out loud to the bots that receive audio, as words to the others (see CallHost). */
  async say(text: string, opts: SpeechOptions = {}): Promise<void> {
    if (this._state !== 'connected') return;
    this.addLine('caller', text);
    await this.host.callerSpoke(this, text, opts);
  }

  /** Says `text` out loud: audio frames to the bots that receive audio, then the words. */
  async speak(text: string, opts: SpeechOptions = {}): Promise<void> {
    if (this._state !== 'connected') return;
    this.addLine('caller', text);
    await this.host.callerSpeaks(this, text, opts);
  }

  /** A voice with no words (a laugh, a cough): the audio of `syllables`, and no transcript. */
  async sound(syllables: string): Promise<void> {
    if (this._state !== 'connected') return;
    this.addLine('caller', `[sound: ${syllables}]`);
    await this.host.callerSpeaks(this, syllables, { words: false });
  }

  async press(digits: string): Promise<void> {
    const tones = [...digits].filter((d) => /^[0-9*#A-Da-d]$/.test(d));
    if (this._state !== 'connected' || tones.length === 0) return;
    this.addLine('caller', `[dtmf ${tones.join('')}]`);
    for (let i = 0; i < tones.length; i++) {
      if (this._state !== 'connected') return;
      if (i > 0) await this.host.timers.sleep(this.host.dtmfGapMs);
      if (this._state !== 'connected') return;
      this.host.callerPressed(this, tones[i]!.toUpperCase());
    }
  }

  hangup(): void {
    if (this._state === 'ended') return;
    this.addLine('caller', '[hangs up]');
    this.end(this._state === 'held' ? 'caller_hangup_on_hold' : 'caller_hangup');
  }

  /** Resolves when connected; false when the call ended first or `timeoutMs` passed. */
  private waitConnected(timeoutMs: number | undefined): Promise<boolean> {
    if (this._state === 'connected') return Promise.resolve(true);
    if (this._state === 'ended') return Promise.resolve(false);
    return new Promise((resolve) => {
      const offState = this.on('state', (s) => {
        done(s === 'connected');
      });
      const cancelTimer = timeoutMs === undefined ? () => {} : this.host.timers.after(timeoutMs, () => done(false));
      const done = (v: boolean): void => {
        offState();
        cancelTimer();
        this.cancels.delete(onEnd);
        resolve(v);
      };
      const onEnd = (): void => done(false);
      this.cancels.add(onEnd);
    });
  }

  /** Next bot (or peer) line (after the cursor) matching `re`; false on timeout or end. */
  private waitBotLine(re: RegExp | undefined, timeoutMs: number, who: 'bot' | 'peer' = 'bot'): Promise<boolean> {
    const scan = (): boolean => {
      for (let i = this.sayCursor; i < this.lines.length; i++) {
        const l = this.lines[i]!;
        if (l.who === who && (!re || re.test(l.text))) {
          this.sayCursor = i + 1;
          return true;
        }
      }
      return false;
    };
    if (scan()) return Promise.resolve(true);
    if (this._state === 'ended') return Promise.resolve(false);
    return new Promise((resolve) => {
      const off = this.on('transcript', () => {
        if (scan()) done(true);
      });
      const cancelTimer = this.host.timers.after(timeoutMs, () => done(false));
      const onEnd = (): void => done(false);
      this.cancels.add(onEnd);
      const done = (v: boolean): void => {
        off();
        cancelTimer();
        this.cancels.delete(onEnd);
        resolve(v);
      };
    });
  }

  /**
   * Runs a caller script. `wait` and `hangup` run in any state (hang up on hold);
   * `press`/`say` wait for the connection first; `waitFor` times out into a hang-up.
   */
  async runScript(steps: readonly CallerStep[]): Promise<void> {
    for (const step of steps) {
      if (this._state === 'ended') return;
      if ('wait' in step) {
        await this.host.timers.sleep(step.wait);
      } else if ('hangup' in step) {
        this.hangup();
        return;
      } else if ('press' in step) {
        if (!(await this.waitConnected(undefined))) return;
        await this.press(step.press);
      } else if ('say' in step) {
        if (!(await this.waitConnected(undefined))) return;
        await this.say(step.say, step.noise === undefined ? {} : { noise: step.noise });
      } else if ('speak' in step) {
        if (!(await this.waitConnected(undefined))) return;
        await this.speak(step.speak, step.noise === undefined ? {} : { noise: step.noise });
      } else if ('sound' in step) {
        if (!(await this.waitConnected(undefined))) return;
        await this.sound(step.sound);
      } else if ('waitFor' in step) {
        const timeoutMs = step.timeoutMs ?? DEFAULT_WAIT_FOR_TIMEOUT_MS;
        let ok: boolean;
        if (step.waitFor === 'connected') {
          ok = await this.waitConnected(timeoutMs);
        } else {
          let re: RegExp | undefined;
          try {
            re = step.match === undefined ? undefined : new RegExp(step.match, 'i');
          } catch {
            this.addLine('system', `script: invalid regex ${JSON.stringify(step.match)}`);
            re = undefined;
          }
          ok = await this.waitBotLine(re, timeoutMs, step.waitFor === 'peer' ? 'peer' : 'bot');
        }
        if (this.isEnded()) return;
        if (!ok) {
          this.addLine('system', `script: waitFor ${step.waitFor}${step.match ? ` /${step.match}/` : ''} timed out after ${timeoutMs} ms`);
          this.addLine('caller', '[hangs up]');
          this.end('script_timeout');
          return;
        }
      }
    }
  }
}

/** Validates a caller script from outside (control API); returns an error message or undefined. */
/** One step of a caller's script (`CallerStep`). */
export function isCallerStep(s: unknown): s is CallerStep {
  if (typeof s !== 'object' || s === null) return false;
  if ('noise' in s && s.noise !== undefined && !(typeof s.noise === 'number' && s.noise >= 0 && s.noise <= 4)) return false;
  return (
    ('wait' in s && typeof s.wait === 'number' && s.wait >= 0) ||
    ('press' in s && typeof s.press === 'string') ||
    ('say' in s && typeof s.say === 'string') ||
    ('speak' in s && typeof s.speak === 'string') ||
    ('sound' in s && typeof s.sound === 'string') ||
    ('hangup' in s && s.hangup === true) ||
    ('waitFor' in s &&
      (s.waitFor === 'connected' || s.waitFor === 'say' || s.waitFor === 'peer') &&
      (!('match' in s) || s.match === undefined || typeof s.match === 'string') &&
      (!('timeoutMs' in s) || s.timeoutMs === undefined || (typeof s.timeoutMs === 'number' && s.timeoutMs >= 0)))
  );
}

export function checkScript(steps: unknown): string | undefined {
  if (!Array.isArray(steps)) return 'script must be an array';
  for (const [i, s] of steps.entries()) {
    if (typeof s !== 'object' || s === null) return `script[${i}] must be an object`;
    if (!isCallerStep(s)) return `script[${i}] is not a valid step`;
  }
  return undefined;
}
