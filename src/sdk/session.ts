/**
 * The runtime behind `Call`: turns call-client events into awaitable bot primitives.
 * Used by the worker; bots only see the `Call` interface.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { CallClient } from '../daily/call-client.js';
import { CallEndedError, PatchbayError } from '../core/errors.js';
import type { Outcome } from '../core/outcome.js';
import type {
  Call,
  CallInfo,
  CollectDigitsOptions,
  ListenOptions,
  SayOptions,
  TransferTarget,
  WarmTransferOptions,
  WarmTransferResult,
} from './index.js';
import type { LlmProvider } from '../voice/llm.js';
import { sentences } from '../voice/sentences.js';
import { VoiceActivity, type VadEvent, type VadOptions } from '../voice/vad.js';
import type { SpeechAudio, TtsProvider } from '../voice/tts.js';
import { decodeWav } from '../voice/wav.js';
import { deferred, eager, Inbox } from './inbox.js';
import { runWarmTransfer } from './warm-transfer.js';

export type { BotEventKind } from '../core/timeline.js';
import type { BotEventKind } from '../core/timeline.js';

export interface SessionDeps {
  info: CallInfo;
  client: CallClient;
  logger: Logger;
  tts: TtsProvider;
  /** Aborts when the call ends; its reason is the outcome. */
  signal: AbortSignal;
  /** Ends the call with an outcome (first caller wins). */
  end(outcome: Outcome, detail?: string): void;
  /** What the bot did, for the parent (harness, dashboard, records). */
  report(kind: BotEventKind, value: string): void;
  callerSessionId(): string | undefined;
  idleTimeoutMs?: number;
  llm?: LlmProvider;
  /** Language for Daily transcription (bot option `transcription: { language }`). */
  transcriptionLanguage?: string;
  /** The call's recording (src/workers/child/call-recording.ts), when it is recorded. */
  recording?: { pause(): Promise<void>; resume(): Promise<void> };
}

/** After the caller stopped speaking, how long `listen()` waits for the turn's final transcript. */
const TRANSCRIPT_AFTER_SPEECH_MS = 1_500;

export class CallSession implements Call {
  readonly id: string;
  readonly callId: string;
  readonly callDomain: string;
  readonly from: string;
  readonly to: string;
  readonly sipHeaders: Readonly<Record<string, string>>;
  readonly roomName: string;
  readonly roomUrl: string;
  readonly bot: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly llm: LlmProvider | undefined;

  private readonly digits = new Inbox<string>();
  private readonly transcripts = new Inbox<string>();
  private transcribing: Promise<void> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private busy = 0;
  /** Interruptible prompts playing now: stopped by the caller's next key or words. */
  private readonly bargeIn = new Set<() => void>();
  /** Voice activity of the caller (bot option `turnDetection`), once started. */
  private vad: VoiceActivity | undefined;
  /** Resolves at the caller's next end of speech (replaced at each start of speech). */
  private speechEnd = deferred<void>();
  /** Set once the caller was handed elsewhere: the worker must not eject them when it leaves. */
  transferred = false;
  /** Where a transfer in progress (or done) sends the caller. */
  transferTarget: string | undefined;

  constructor(private readonly deps: SessionDeps) {
    this.id = deps.info.id;
    this.callId = deps.info.callId;
    this.callDomain = deps.info.callDomain;
    this.from = deps.info.from;
    this.to = deps.info.to;
    this.sipHeaders = deps.info.sipHeaders;
    this.roomName = deps.info.roomName;
    this.roomUrl = deps.info.roomUrl;
    this.bot = deps.info.bot;
    this.config = deps.info.config;
    this.llm = deps.llm;
    this.logger = deps.logger;
    this.signal = deps.signal;
    deps.signal.addEventListener('abort', () => clearTimeout(this.idleTimer), { once: true });
  }

  /** Feed from the worker: a DTMF digit from the caller. */
  pushDigit(digit: string): void {
    this.touch();
    this.digits.push(digit);
    for (const stop of [...this.bargeIn]) stop();
  }

  /** Feed from the worker: a final transcript of the caller. */
  pushTranscript(text: string): void {
    this.touch();
    this.deps.report('transcript', text);
    this.transcripts.push(text);
    for (const stop of [...this.bargeIn]) stop();
  }

  /**
   * Starts voice activity detection on the caller's audio (bot option `turnDetection`): a start of
   * speech barges in on interruptible prompts; an end of speech ends the caller's turn in `listen()`.
   */
  async startVoiceActivity(opts: VadOptions = {}): Promise<void> {
    if (this.vad) return;
    const vad = await VoiceActivity.create(opts);
    this.vad = vad;
    const off = this.deps.client.on('audio-frame', (f) => {
      if (this.signal.aborted) return;
      const caller = this.deps.callerSessionId();
      if (caller && f.participantId !== caller) return;
      vad.push(f.pcm, f.sampleRate).then(
        (events) => {
          for (const ev of events) this.onVoice(ev);
        },
        (err: unknown) => this.logger.warn({ err }, 'voice activity detection failed on a frame'),
      );
    });
    this.signal.addEventListener('abort', off, { once: true });
    await this.deps.client.receiveAudio(true);
  }

  private onVoice(ev: VadEvent): void {
    this.touch();
    if (ev.type === 'speech-start') {
      for (const stop of [...this.bargeIn]) stop();
    } else {
      const ended = this.speechEnd;
      this.speechEnd = deferred<void>();
      ended.resolve();
    }
  }

  /** Restart the idle timer (caller activity). Paused while the bot itself speaks. */
  touch(): void {
    const ms = this.deps.idleTimeoutMs;
    if (!ms || this.signal.aborted) return;
    clearTimeout(this.idleTimer);
    if (this.busy > 0) return;
    this.idleTimer = setTimeout(() => this.deps.end('idle_timeout', `no caller input for ${ms} ms`), ms);
    this.idleTimer.unref();
  }

  private ensureLive(): void {
    if (this.signal.aborted) throw new CallEndedError(String(this.signal.reason ?? 'ended'));
  }

  /** Runs an action that belongs to the bot's turn: the idle timer is paused while it runs. */
  private async turn<T>(fn: () => Promise<T>): Promise<T> {
    this.ensureLive();
    this.busy++;
    clearTimeout(this.idleTimer);
    try {
      return await fn();
    } catch (err) {
      if (this.signal.aborted) throw new CallEndedError(String(this.signal.reason ?? 'ended'));
      throw err;
    } finally {
      this.busy--;
      if (this.busy === 0) this.touch();
    }
  }

  say(input: string | AsyncIterable<string>, opts: SayOptions = {}): Promise<void> {
    if (typeof input !== 'string') return this.sayStream(input, opts);
    const text = input;
    return this.turn(async () => {
      // Barge-in: a caller who already typed ahead does not need the prompt.
      if (opts.interruptible && this.digits.size > 0) return;
      this.deps.report('say', text);
      const audio = await this.deps.tts.synthesize(text, this.signal);
      this.ensureLive();
      if (!opts.interruptible) return this.deps.client.sendAudio({ ...audio, text }, this.signal);
      const barge = new AbortController();
      const stop = () => barge.abort(new PatchbayError('barge_in', 'the caller interrupted the prompt'));
      this.bargeIn.add(stop);
      try {
        await this.deps.client.sendAudio({ ...audio, text }, AbortSignal.any([this.signal, barge.signal]));
      } catch (err) {
        if (barge.signal.aborted && !this.signal.aborted) return; // the caller spoke or pressed a key
        throw err;
      } finally {
        this.bargeIn.delete(stop);
      }
    });
  }

  /**
   * Streamed text: spoken piece by piece as it arrives (see sentences.ts). The next piece's speech
   * is synthesized while the current one plays; barge-in and hang-up stop the playout at once and
   * abort the source (an `LlmStream`'s request) and any speech request in flight.
   */
  private sayStream(source: AsyncIterable<string>, opts: SayOptions): Promise<void> {
    const abortSource = () => (source as { abort?: (r?: unknown) => void }).abort?.();
    return this.turn(async () => {
      if (opts.interruptible && this.digits.size > 0) return abortSource();
      const barge = new AbortController();
      const stop = () => barge.abort(new PatchbayError('barge_in', 'the caller interrupted the prompt'));
      if (opts.interruptible) this.bargeIn.add(stop);
      const signal = AbortSignal.any([this.signal, barge.signal]);
      signal.addEventListener('abort', abortSource, { once: true });
      const pieces = sentences(source, opts.pieces)[Symbol.asyncIterator]();
      const ahead = async (): Promise<{ text: string; audio: AsyncIterable<SpeechAudio> } | undefined> => {
        const r = await pieces.next();
        return r.done ? undefined : { text: r.value, audio: eager(this.speech(r.value, signal)) };
      };
      try {
        let cur = await ahead();
        while (cur) {
          const next = ahead();
          next.catch(() => undefined);
          this.deps.report('say', cur.text);
          let first = true;
          for await (const chunk of cur.audio) {
            this.ensureLive();
            // Interrupted between two pieces of audio: stop here, not after the piece.
            if (signal.aborted) throw signal.reason;
            await this.deps.client.sendAudio(first ? { ...chunk, text: cur.text } : { ...chunk, continues: true }, signal);
            first = false;
          }
          if (first) await this.deps.client.sendAudio({ pcm: new Int16Array(0), sampleRate: 16_000, text: cur.text }, signal);
          cur = await next;
        }
      } catch (err) {
        if (barge.signal.aborted && !this.signal.aborted) return; // the caller spoke or pressed a key
        throw err;
      } finally {
        signal.removeEventListener('abort', abortSource);
        this.bargeIn.delete(stop);
        if (signal.aborted) abortSource();
      }
    });
  }

  /** Speech for one piece of text: streamed when the provider can, else whole. */
  private speech(text: string, signal: AbortSignal): AsyncIterable<SpeechAudio> {
    const { tts } = this.deps;
    if (tts.synthesizeStream) return tts.synthesizeStream(text, signal);
    return (async function* () {
      yield await tts.synthesize(text, signal);
    })();
  }

  play(audio: { pcm: Int16Array; sampleRate: number } | string): Promise<void> {
    return this.playAs(audio, typeof audio === 'string' ? audio : undefined);
  }

  /** `play`, reported as `label` (the file a decoded greeting came from). */
  playAs(audio: { pcm: Int16Array; sampleRate: number } | string, label: string | undefined): Promise<void> {
    return this.turn(async () => {
      const pcm = typeof audio === 'string' ? decodeWav(await readFile(audio)) : audio;
      this.deps.report('play', label ?? `${pcm.pcm.length} samples`);
      this.ensureLive();
      await this.deps.client.sendAudio(pcm, this.signal);
    });
  }

  async collectDigits(opts: CollectDigitsOptions = {}): Promise<string> {
    this.ensureLive();
    if (!opts.sensitive) {
      const got = await this.readDigits(opts);
      this.deps.report('digits', got);
      return got;
    }
    // PCI: nothing of the input reaches a recording, the record, a log line or a transcript.
    await this.pauseRecording();
    try {
      const got = await this.readDigits(opts);
      this.deps.report('digits', `[sensitive input: ${got.length} keys]`);
      return got;
    } finally {
      // Also when the collection throws (the call ended, a bad option).
      void this.resumeRecording();
    }
  }

  /** Pauses the call's recording (Daily: stops it, a new segment starts at resume; local: silence). Resolves once nothing more is recorded. */
  async pauseRecording(): Promise<void> {
    await this.deps.recording?.pause();
  }

  /** Resumes a paused recording (idempotent; nothing happens when the call is not recorded). */
  async resumeRecording(): Promise<void> {
    await this.deps.recording?.resume();
  }

  private async readDigits(opts: CollectDigitsOptions): Promise<string> {
    const max = opts.maxDigits ?? 1;
    if (!Number.isInteger(max) || max < 1) throw new TypeError('collectDigits: maxDigits must be a positive integer');
    if (opts.terminator !== undefined && !/^[0-9*#A-D]$/.test(opts.terminator))
      throw new TypeError('collectDigits: terminator must be one DTMF key (0-9 * # A-D)');
    const first = opts.firstDigitTimeoutMs ?? 5_000;
    const inter = opts.interDigitTimeoutMs ?? 3_000;
    let got = '';
    while (got.length < max) {
      const d = await this.digits.next(got.length === 0 ? first : inter, this.signal);
      if (d === undefined) break;
      if (opts.terminator && d === opts.terminator) break;
      got += d;
    }
    // "1234#" with maxDigits 4: the terminator already typed belongs to this input, not the next.
    if (got.length === max && opts.terminator) this.digits.dropHead(opts.terminator);
    return got;
  }

  async listen(opts: ListenOptions = {}): Promise<string | null> {
    this.ensureLive();
    await this.startTranscription();
    const timeoutMs = opts.timeoutMs ?? 8_000;
    if (!this.vad) return (await this.transcripts.next(timeoutMs, this.signal)) ?? null;
    return this.listenForTurn(timeoutMs);
  }

  /**
   * With voice activity: the turn is every final transcript until the caller stops speaking.
   * A transcript that arrives while no speech is heard (text-only callers) is a turn by itself.
   */
  private async listenForTurn(timeoutMs: number): Promise<string | null> {
    const vad = this.vad!;
    const parts: string[] = [];
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    let speechEnd = this.speechEnd.promise.then(() => (ended = true));
    for (;;) {
      const wait = parts.length === 0 && !ended ? deadline - Date.now() : TRANSCRIPT_AFTER_SPEECH_MS;
      if (wait <= 0) break;
      const got = await Promise.race([this.transcripts.next(wait, this.signal), speechEnd.then(() => 'speech-end' as const)]);
      if (got === 'speech-end') {
        if (parts.length > 0) break;
        speechEnd = new Promise<never>(() => undefined);
        continue; // spoke, but the words are still being transcribed
      }
      if (got === undefined) break;
      parts.push(got);
      if (ended || !vad.inSpeech) break;
    }
    return parts.length > 0 ? parts.join(' ') : null;
  }

  /** Starts Daily transcription once (listen() and onTranscript need it). */
  startTranscription(): Promise<void> {
    const lang = this.deps.transcriptionLanguage;
    this.transcribing ??= this.deps.client.startTranscription(lang ? { language: lang } : undefined).catch((err: unknown) => {
      this.transcribing = undefined;
      throw err;
    });
    return this.transcribing;
  }

  transfer(target: TransferTarget): Promise<void> {
    return this.turn(async () => {
      const sessionId = this.requireCaller();
      const toEndPoint = 'sipUri' in target ? target.sipUri : target.phoneNumber;
      this.deps.report('transfer', toEndPoint);
      // Set before the request: the caller's leg may end (dialin-stopped) before the ack arrives.
      this.transferTarget = toEndPoint;
      try {
        if ('sipUri' in target) await this.deps.client.sipRefer({ sessionId, toEndPoint });
        else await this.deps.client.sipCallTransfer({ sessionId, toEndPoint });
      } catch (err) {
        if (!this.signal.aborted) this.transferTarget = undefined;
        throw err;
      }
      this.transferred = true;
      this.deps.end('completed', `transferred to ${toEndPoint}`);
    });
  }

  warmTransfer(opts: WarmTransferOptions): Promise<WarmTransferResult> {
    const caller = this.requireCaller();
    return runWarmTransfer(
      {
        client: this.deps.client,
        caller,
        signal: this.signal,
        logger: this.logger,
        say: (text) => this.say(text),
        turn: (fn) => this.turn(fn),
        report: (value) => this.deps.report('transfer', value),
        end: (detail) => this.deps.end('completed', detail),
        bridging: (target) => (this.transferTarget = target),
      },
      opts,
    );
  }

  /** Ends the call; the worker ejects the caller as it leaves the room. */
  async hangup(reason = 'bot hung up'): Promise<void> {
    if (this.signal.aborted) return;
    this.deps.report('hangup', reason);
    this.deps.end('completed', reason);
  }

  sendDtmf(tones: string): Promise<void> {
    return this.turn(async () => {
      await this.deps.client.sendDTMF({ sessionId: this.requireCaller(), tones });
    });
  }

  private requireCaller(): string {
    const id = this.deps.callerSessionId();
    if (!id) throw new PatchbayError('no_caller', 'the caller is not in the room');
    return id;
  }
}
