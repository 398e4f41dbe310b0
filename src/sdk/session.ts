/** The runtime behind `Call`: call-client events as awaitable bot primitives (the worker's; bots see `Call`). */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AudioOut, CallClient } from '../daily/call-client.js';
import { CallEndedError, PatchbayError } from '../core/errors.js';
import type { Outcome } from '../core/outcome.js';
import type { Call, CallInfo, CollectDigitsOptions, ListenOptions, SayOptions } from './index.js';
import type { TransferTarget, WarmTransferOptions, WarmTransferResult } from './index.js';
import type { LlmProvider } from '../voice/llm.js';
import { sentences } from '../voice/sentences.js';
import { VoiceActivity, type VadEvent, type VadOptions } from '../voice/vad.js';
import { textOnlyTts, type TtsProvider } from '../voice/tts.js';
import { isCachedTts } from '../voice/tts-cache.js';
import { heardOfPhrase, onePiece, speakTurn, type Spoken } from './speak.js';
import { decodeWav } from '../voice/wav.js';
import { deferred, Inbox } from './inbox.js';
import { bargeIn, TurnTaking } from './turns.js';
import type { EndOfTurnDetector, InterruptionOptions } from '../voice/turns.js';
import { TurnAudio } from '../voice/end-of-turn.js';
import { askEndOfTurn, listenForTurn } from './listen-turn.js';
import { CallerAudio } from './caller-audio.js';
import { runWarmTransfer } from './warm-transfer.js';
import { collectDigits } from './digits.js';
import { isStepName, type BotEventKind } from '../core/timeline.js';
export type { BotEventKind };

export interface SessionDeps {
  info: CallInfo;
  client: CallClient;
  logger: Logger;
  tts: TtsProvider;
  /** What a streamed say() falls back to when the vendor fails mid-turn (espeak-ng or text). */
  ttsFallback?: TtsProvider;
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
  /** Starts the caller's transcription when it is not Daily's (a streaming STT provider); resolves, never rejects. */
  startStt?: () => Promise<void>;
  /** Who may interrupt a prompt, and how (bot option `interruptions`; src/sdk/turns.ts). */
  interruptions?: InterruptionOptions;
  /** Whether a pause ends the caller's turn (bot option `endOfTurn`); fed the caller's last 8 s of audio. */
  endOfTurn?: EndOfTurnDetector;
  /** When the end-of-turn model says the turn goes on: how long `listen()` waits for more (default 3 000 ms). */
  maxTurnPauseMs?: number;
  /** RNNoise on the caller's audio before VAD and speech-to-text (bot option `noiseSuppression`). */
  noiseSuppression?: boolean;
  /** The call's recording (src/workers/child/call-recording.ts), when it is recorded. */
  recording?: { pause(): Promise<void>; resume(): Promise<void> };
  /** Times the turns (src/core/turn-timing.ts): the session marks the caller's end of speech and `listen()`'s turn. */
  mark?: (stage: 'speechEnd' | 'transcript') => void;
}

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
  readonly direction: 'inbound' | 'outbound';
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly callback: CallInfo['callback'];
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly llm: LlmProvider | undefined;

  private readonly digits = new Inbox<string>();
  private readonly transcripts = new Inbox<string>();
  private transcribing: Promise<void> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private busy = 0;
  /** Interruptible prompts: back-channels, false interruptions, pauses and resumes (src/sdk/turns.ts). */
  private readonly turns: TurnTaking;
  /** The caller's frames, denoised when the bot asked (`noiseSuppression`): VAD, the end-of-turn model and STT listen here. */
  readonly callerAudio: CallerAudio;
  /** Voice activity of the caller (bot option `turnDetection`), once started. */
  private vad: VoiceActivity | undefined;
  /** Resolves at the caller's next end of speech (replaced at each start of speech). */
  private speechEnd = deferred<void>();
  /** Resolves at the STT provider's next end of turn (replaced at each). */
  private sttTurnEnd = deferred<{ text?: string }>();
  /** The caller's recent audio at 16 kHz, for the end-of-turn model (only when the bot has one). */
  private turnAudio: TurnAudio | undefined;
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
    this.direction = deps.info.direction;
    this.metadata = deps.info.metadata;
    this.callback = deps.info.callback;
    this.llm = deps.llm;
    this.logger = deps.logger;
    this.signal = deps.signal;
    this.callerAudio = new CallerAudio({
      client: deps.client,
      callerSessionId: () => deps.callerSessionId(),
      signal: deps.signal,
      logger: deps.logger,
      noiseSuppression: deps.noiseSuppression ?? false,
      report: (v) => deps.report('turn', v),
    });
    this.turns = new TurnTaking({ report: (v) => deps.report('turn', v), keep: (text) => this.transcripts.push(text) }, deps.interruptions);
    deps.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(this.idleTimer);
        this.turns.close();
      },
      { once: true },
    );
  }

  /** Feed from the worker: a DTMF digit from the caller. */
  pushDigit(digit: string): void {
    this.touch();
    this.digits.push(digit);
    this.turns.key();
  }

  /**
   * Feed from the worker: a final transcript of the caller. Words that interrupt stop an
   * interruptible prompt; a back-channel said over one ("uh-huh") is reported but is not a turn.
   */
  pushTranscript(text: string): void {
    this.touch();
    this.deps.report('transcript', text);
    if (this.turns.words(text, true)) this.transcripts.push(text);
  }

  /** Feed from the worker: the STT provider's endpointing ends the caller's turn (`end-of-turn` SttEvent), with its text if it gives the whole turn. */
  pushEndOfTurn(text?: string): void {
    this.touch();
    const ended = this.sttTurnEnd;
    this.sttTurnEnd = deferred<{ text?: string }>();
    ended.resolve(text === undefined ? {} : { text });
  }

  /** Feed from the worker: an interim transcript (words so far): may interrupt a prompt sooner than the final. */
  pushInterim(text: string): void {
    this.touch();
    this.turns.words(text, false);
  }

  /**
   * Starts voice activity detection on the caller's audio (bot option `turnDetection`): a start of
   * speech barges in on interruptible prompts; an end of speech ends the caller's turn in `listen()`.
   */
  async startVoiceActivity(opts: VadOptions = {}): Promise<void> {
    if (this.vad) return;
    const vad = await VoiceActivity.create(opts);
    this.vad = vad;
    const turnAudio = this.deps.endOfTurn ? (this.turnAudio = new TurnAudio()) : undefined;
    this.callerAudio.on((pcm, sampleRate) => {
      turnAudio?.push(pcm, sampleRate);
      vad.push(pcm, sampleRate).then(
        (events) => {
          for (const ev of events) this.onVoice(ev);
          if (vad.inSpeech) this.turns.voiceLasted(vad.voicedMs);
        },
        (err: unknown) => this.logger.warn({ err }, 'voice activity detection failed on a frame'),
      );
    });
    await this.callerAudio.start();
  }

  private onVoice(ev: VadEvent): void {
    this.touch();
    if (ev.type === 'speech-start') {
      this.turns.voiceStart();
    } else {
      this.deps.mark?.('speechEnd');
      this.turns.voiceEnd();
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

  say(input: string | AsyncIterable<string>, opts: SayOptions = {}): Promise<Spoken> {
    const { tts } = this.deps;
    // A phrase the vendor streams (not cached) is a turn of its own, like streamed text.
    const streamed = typeof input !== 'string' || (tts.openTurn !== undefined && !(isCachedTts(tts) && tts.has(input)));
    if (streamed) return this.sayStream(typeof input === 'string' ? onePiece(input) : input, opts, typeof input === 'string');
    const text = input;
    return this.turn(async () => {
      // Barge-in: a caller who already typed ahead does not need the prompt.
      if (opts.interruptible && this.digits.size > 0) return { text: '', said: text, interrupted: true };
      this.deps.report('say', text);
      const audio = await tts.synthesize(text, this.signal);
      this.ensureLive();
      if (!opts.interruptible) {
        await this.deps.client.sendAudio({ ...audio, text }, this.signal);
        return { text, said: text, interrupted: false };
      }
      const barge = new AbortController();
      const unregister = this.turns.register(() => barge.abort(bargeIn()));
      const started = Date.now();
      try {
        await this.playInterruptible({ ...audio, text }, AbortSignal.any([this.signal, barge.signal]));
        return { text, said: text, interrupted: false };
      } catch (err) {
        // The caller spoke or pressed a key: they heard what was played until then.
        if (barge.signal.aborted && !this.signal.aborted) return heardOfPhrase(text, audio, Date.now() - started);
        throw err;
      } finally {
        unregister();
      }
    });
  }

  /**
   * Streamed text (or a phrase the vendor streams): one TTS turn, fed piece by piece as it arrives
   * (see sentences.ts and speak.ts); the vendor's context keeps the prosody across pieces. Barge-in
   * and hang-up stop the playout at once and abort the source (an `LlmStream`'s request) and the
   * vendor's context; the result says what the caller heard.
   */
  private sayStream(source: AsyncIterable<string>, opts: SayOptions, whole = false): Promise<Spoken> {
    const abortSource = () => (source as { abort?: (r?: unknown) => void }).abort?.();
    return this.turn(async () => {
      if (opts.interruptible && this.digits.size > 0) {
        abortSource();
        return { text: '', said: '', interrupted: true };
      }
      const barge = new AbortController();
      const unregister = opts.interruptible ? this.turns.register(() => barge.abort(bargeIn())) : () => undefined;
      const signal = AbortSignal.any([this.signal, barge.signal]);
      signal.addEventListener('abort', abortSource, { once: true });
      const deps = {
        client: {
          sendAudio: (a: AudioOut, s: AbortSignal) =>
            opts.interruptible ? this.playInterruptible(a, s) : this.deps.client.sendAudio(a, s),
        },
        tts: this.deps.tts,
        fallback: this.deps.ttsFallback ?? textOnlyTts,
        logger: this.logger,
        report: (t: string) => this.deps.report('say', t),
        onError: opts.onError,
      };
      try {
        const spoken = await speakTurn(deps, whole ? source : sentences(source, opts.pieces), signal);
        this.ensureLive();
        return spoken;
      } finally {
        signal.removeEventListener('abort', abortSource);
        unregister();
        if (signal.aborted) abortSource();
      }
    });
  }

  /** One piece of an interruptible prompt: paused while the caller may be taking the turn, resumed after a false interruption. */
  private playInterruptible(audio: AudioOut, signal: AbortSignal): Promise<void> {
    return this.turns.play(audio, signal, (a, s) => this.deps.client.sendAudio(a, s));
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
  step(name: string): void {
    this.ensureLive();
    if (!isStepName(name)) throw new TypeError(`step: ${JSON.stringify(name)} is not a step name (1-64 of letters, digits, space _.:/-)`);
    this.deps.report('step', name);
  }

  async collectDigits(opts: CollectDigitsOptions = {}): Promise<string> {
    this.ensureLive();
    if (opts.step !== undefined) this.step(opts.step);
    return collectDigits(opts, {
      digits: this.digits,
      signal: this.signal,
      report: (v) => this.deps.report('digits', v),
      pause: () => this.pauseRecording(),
      resume: () => this.resumeRecording(),
    });
  }

  /** Pauses the call's recording (Daily: stops it, a new segment starts at resume; local: silence). Resolves once nothing more is recorded. */
  async pauseRecording(): Promise<void> {
    await this.deps.recording?.pause();
  }
  /** Resumes a paused recording (idempotent; nothing happens when the call is not recorded). */
  async resumeRecording(): Promise<void> {
    await this.deps.recording?.resume();
  }

  async listen(opts: ListenOptions = {}): Promise<string | null> {
    this.ensureLive();
    if (opts.step !== undefined) this.step(opts.step);
    await this.startTranscription();
    const timeoutMs = opts.timeoutMs ?? 8_000;
    const heard = this.vad ? await this.listenForTurn(timeoutMs) : ((await this.transcripts.next(timeoutMs, this.signal)) ?? null);
    if (heard !== null) this.deps.mark?.('transcript');
    return heard;
  }

  /** With voice activity: the turn ends on the provider's end of turn, or VAD silence and the words (src/sdk/listen-turn.ts). */
  private listenForTurn(timeoutMs: number): Promise<string | null> {
    const vad = this.vad!;
    return listenForTurn(
      {
        transcripts: this.transcripts,
        signal: this.signal,
        inSpeech: () => vad.inSpeech,
        speechEnd: () => this.speechEnd.promise,
        sttTurnEnd: () => this.sttTurnEnd.promise,
        turnOver: (parts) =>
          askEndOfTurn(this.deps.endOfTurn, this.turnAudio, parts, {
            signal: this.signal,
            logger: this.logger,
            report: (v) => this.deps.report('turn', v),
          }),
        maxTurnPauseMs: this.deps.maxTurnPauseMs ?? 3_000,
      },
      timeoutMs,
    );
  }

  /** Starts transcription once, Daily's or the bot's STT provider's (listen() and onTranscript need it). */
  startTranscription(): Promise<void> {
    const lang = this.deps.transcriptionLanguage;
    const start = this.deps.startStt ?? (() => this.deps.client.startTranscription(lang ? { language: lang } : undefined));
    this.transcribing ??= start().catch((err: unknown) => {
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
        say: (text) => this.say(text).then(() => undefined),
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
    return this.turn(() => this.deps.client.sendDTMF({ sessionId: this.requireCaller(), tones }));
  }

  private requireCaller(): string {
    const id = this.deps.callerSessionId();
    if (!id) throw new PatchbayError('no_caller', 'the caller is not in the room');
    return id;
  }
}
