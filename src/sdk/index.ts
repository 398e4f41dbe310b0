/**
 * The bot-script API. A bot is a module in `bots/` whose default export is `defineBot({...})`.
 *
 *   import { defineBot } from 'patchbay/sdk';
 *   export default defineBot({
 *     name: 'greeter',
 *     async onCall(call) {
 *       await call.say(`Hello, you called ${call.to}.`);
 *       await call.hangup('done');
 *     },
 *   });
 *
 * `onCall` runs once the caller is connected. When it returns, the bot hangs up (if the caller is
 * still there). Every primitive rejects with `CallEndedError` once the call is over, so a bot's
 * code unwinds by itself when the caller hangs up.
 */
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { CallIdentity } from '../core/call-identity.js';
import type { Outcome } from '../core/outcome.js';
import type { CallbackInfo } from '../core/callback.js';
export type { CallbackInfo } from '../core/callback.js';
import type { LlmProvider } from '../voice/llm.js';

export { CallEndedError, PatchbayError } from '../core/errors.js';
export type { Outcome } from '../core/outcome.js';
export type { ChatMessage, ChatOptions, LlmProvider, LlmStream, StreamOptions, ToolCall, ToolSpec } from '../voice/llm.js';
export { sentences, type SentenceOptions } from '../voice/sentences.js';
export type { VadOptions, VadEvent } from '../voice/vad.js';
import type { VadOptions } from '../voice/vad.js';
import { resolveInterruptions, type EndOfTurnDetector, type InterruptionOptions } from '../voice/turns.js';
import { errorMessage } from '../core/errors.js';
export { DEFAULT_BACKCHANNELS, type InterruptionOptions, type EndOfTurnDetector, type TurnSoFar } from '../voice/turns.js';
export { onnxEndOfTurn, type OnnxEndOfTurnOptions } from '../voice/end-of-turn.js';
import type { SentenceOptions } from '../voice/sentences.js';
export { LlmError } from '../voice/llm.js';
export { TtsError } from '../voice/tts.js';
import type { TtsError } from '../voice/tts.js';
export type { Spoken } from './speak.js';
import type { Spoken } from './speak.js';
export { spellOut } from './speech.js';
export { assemblyai, deepgram, dailyTranscription, openai } from './stt.js';
export { cartesia, elevenlabs, espeak, openaiSpeech, textOnly } from './tts.js';
export type { TtsChoice, TtsOptions } from '../voice/tts-types.js';
import type { TtsChoice } from '../voice/tts-types.js';
import { checkTtsChoice } from './tts.js';
export { SttError, type SttChoice, type SttOptions } from '../voice/stt.js';
import type { SttChoice } from '../voice/stt.js';
import { checkSttChoice } from './stt.js';
export { openaiRealtime, geminiLive, type RealtimeOptions, type RealtimeTool, type RealtimeStage } from './realtime.js';
import { checkRealtimeChoice, type RealtimeChoice } from './realtime.js';
export { S2sError } from '../voice/s2s.js';

/**
 * What is known about the call: its identity (src/core/call-identity.ts; `id` is patchbay's id,
 * `callId` Daily's) and this bot's settings.
 */
export interface CallInfo extends Readonly<Omit<CallIdentity, 'sipHeaders'>> {
  readonly sipHeaders: Readonly<Record<string, string>>;
  /** This bot's settings from the routing file (`bots.<name>` merged with the route's `config`). */
  readonly config: Readonly<Record<string, unknown>>;
  /** `outbound` for a call placed with `POST /calls` (docs/outbound.md); `inbound` otherwise. */
  readonly direction: 'inbound' | 'outbound';
  /** An outbound call's `metadata` from `POST /calls` (empty for inbound calls). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** A callback the caller asked for when every bot was busy (CALLBACK_OFFER, docs/outbound.md); undefined otherwise. */
  readonly callback: CallbackInfo | undefined;
}

/** What voicemail detection heard on an outbound call's answer (src/voice/voicemail.ts). */
export interface VoicemailInfo {
  /** `beep` (a tone was heard) or `long-greeting` (a long recorded greeting, no beep heard). */
  reason: 'beep' | 'long-greeting';
  /** Audio time from the answer until the message may start (after the beep). */
  recordFromMs: number;
  /** The beep's frequency in Hz, when there was one. */
  beepHz?: number;
}

export interface CollectDigitsOptions {
  /** Stop after this many digits (default 1). */
  maxDigits?: number;
  /** A key that ends input early and is not included (e.g. '#'). */
  terminator?: string;
  /** How long to wait for the first digit (default 5000 ms). */
  firstDigitTimeoutMs?: number;
  /** How long to wait between digits (default 3000 ms). */
  interDigitTimeoutMs?: number;
  /** Marks this step (`call.step(step)`) as the input starts. */
  step?: string;
  /**
   * PCI: the recording is paused while the keys are collected (and resumed after, even on an
   * error), and the keys appear in no record, transcript or log line (`[sensitive input: N keys]`).
   */
  sensitive?: boolean;
}

export interface SayOptions {
  /**
   * Barge-in: stop speaking as soon as the caller presses a key or says something (the key stays
   * buffered for `collectDigits`), and skip the prompt when keys were already typed ahead.
   */
  interruptible?: boolean;
  /** Streamed text only: how it is cut into pieces to speak (see `sentences`). */
  pieces?: SentenceOptions;
  /**
   * The TTS vendor failed mid-turn (disconnect, 429, bad key): the rest is spoken by the fallback
   * (espeak-ng, or text) and this is called with the error. `say()` still resolves (`Spoken.error`).
   */
  onError?: (err: TtsError) => void;
}

export interface ListenOptions {
  /** Resolve with null when nothing final was said within this time (default 8000 ms). */
  timeoutMs?: number;
  /** Marks this step (`call.step(step)`) as the listening starts. */
  step?: string;
}

export type TransferTarget = { sipUri: string } | { phoneNumber: string };

export interface WarmTransferOptions {
  /** The human (agent, queue): a SIP URI or a phone number. */
  to: TransferTarget;
  /** What the agent hears before the caller is put through (only the agent hears it). */
  brief: string | AsyncIterable<string>;
  /** Said to the caller before they wait (default "Please hold while I connect you."). */
  holdMessage?: string;
  /** How long the agent may take to answer (default 30 000 ms). */
  answerTimeoutMs?: number;
  /** Said to the caller when the agent cannot be reached (default: an apology; the bot then carries on). */
  apology?: string;
}

export type WarmTransferResult =
  | { result: 'bridged'; agentSessionId: string; bridgedMs: number; endedBy: 'agent' | 'caller' }
  | { result: 'no_answer' | 'failed'; detail: string };

export interface Call extends CallInfo {
  /** pino child logger carrying callId, bot and pid. */
  readonly logger: Logger;
  /** An OpenAI-compatible chat client when OPENAI_API_KEY is configured; undefined offline. */
  readonly llm: LlmProvider | undefined;
  /** Aborts when the call ends, whatever the reason. */
  readonly signal: AbortSignal;
  /**
   * Speaks `text` (TTS) and resolves when it has been played (or interrupted, see `SayOptions`).
   * Given streamed text (e.g. `call.llm.stream(...)`), speaks it piece by piece as it arrives, all in
   * one TTS turn (one vendor context with Cartesia and ElevenLabs: the prosody flows across
   * sentences); barge-in or hang-up aborts the stream. Resolves with what the caller heard
   * (`Spoken.text`: after an interruption, the words played up to it), for the bot's history.
   */
  say(text: string | AsyncIterable<string>, opts?: SayOptions): Promise<Spoken>;
  /** Plays PCM16 mono audio, or a WAV file by path. */
  play(audio: { pcm: Int16Array; sampleRate: number } | string): Promise<void>;
  /** Collects DTMF digits. Digits pressed before the call (type-ahead) count. Resolves '' when none came. */
  collectDigits(opts?: CollectDigitsOptions): Promise<string>;
  /** Pauses the call's recording until `resumeRecording()` (Daily: a new segment then; local: silence). No-op when not recorded. */
  pauseRecording(): Promise<void>;
  resumeRecording(): Promise<void>;
  /** The next final transcript of the caller's speech, or null after `timeoutMs`. */
  listen(opts?: ListenOptions): Promise<string | null>;
  /** Transfers the caller (SIP REFER for SIP URIs, a call transfer for phone numbers); the bot's call ends. */
  transfer(target: TransferTarget): Promise<void>;
  /**
   * Warm transfer: tells the caller to hold, dials a human into the room, briefs them (the caller
   * does not hear the briefing), then puts caller and agent through to each other. Resolves when the
   * bridged conversation is over (`bridged`; the call then ends), or at once with `no_answer` /
   * `failed` after apologising to the caller, who stays with the bot. Needs a room with dial-out
   * (`DAILY_DIALOUT=true`, an approved Daily account).
   */
  warmTransfer(opts: WarmTransferOptions): Promise<WarmTransferResult>;
  /** Hangs up on the caller; the call ends with outcome `completed`. */
  hangup(reason?: string): Promise<void>;
  /** Sends DTMF tones to the caller (e.g. to drive a remote IVR after a transfer). */
  sendDtmf(tones: string): Promise<void>;
  /**
   * Marks where the call now is in this bot ("main-menu", "pin"): a `step` event in the call's
   * record, with its time. The call stays in a step until the next one (or its end); funnels
   * (`GET /analytics/funnel`, the dashboard) count the calls that reached each step, where they
   * ended and how long they spent there. Names: 1–64 of letters, digits, ` _.:/-`, from a fixed
   * set of the bot's (never caller data: they are metric labels).
   */
  step(name: string): void;
}

export interface RecordingOptions {
  mode: 'off' | 'daily' | 'local';
  consent?: string;
}

/** What every bot may set; a bot is these plus `onCall` or `realtime` (`BotOptions`). */
export interface BotBaseOptions {
  name: string;
  /**
   * This bot's version, as call records, funnels and the dashboard show it ("2026-12-01", "menu-v2").
   * Without it, the version is a hash of the bot's file and of what it imports from the bots directory.
   */
  version?: string;
  /** End the call (outcome `idle_timeout`) when the caller neither speaks nor presses a key for this long. */
  idleTimeoutMs?: number;
  /** A tighter MAX_CALL_MS for this bot. */
  maxCallMs?: number;
  /**
   * Start Daily transcription as soon as the caller is connected (so nothing they say is lost
   * while the bot greets them). Implied by `onTranscript`; `listen()` starts it lazily otherwise.
   */
  transcription?: boolean | { language?: string };
  /**
   * Who hears the caller: Daily's transcription, or a streaming vendor fed the caller's audio
   * (`deepgram({ model: 'nova-3', language: 'en-US' })`). Default: the service's STT_PROVIDER.
   * Its finals reach `listen()` and `onTranscript` exactly like Daily's transcripts.
   */
  stt?: SttChoice;
  /**
   * Who speaks for the bot: `cartesia({ voice })`, `elevenlabs({ voice })`, `openaiSpeech()`,
   * `espeak()` or `textOnly()`. Default: the service's TTS_PROVIDER. Keys come from the environment.
   */
  tts?: TtsChoice;
  /**
   * Turn detection on the caller's audio (voice activity, Silero VAD): interruptible prompts stop
   * the moment the caller starts speaking (not only on a transcript or a key), and `listen()` ends
   * the caller's turn when they stop speaking (`minSilenceMs`), with every final transcript of the
   * turn joined. `true` for the defaults.
   */
  turnDetection?: boolean | VadOptions;
  /**
   * Who may interrupt an interruptible prompt (issue 22): by default words decide, not voice alone.
   * A back-channel ("uh-huh", "yeah", "okay"; `backchannels`) or fewer than `minWords` words leave
   * the prompt playing; voice that lasts `pauseAfterMs` pauses it until words come; voice with no
   * words within `falseInterruptionMs` resumes it where it stopped. `{ mode: 'voice' }`: any voice
   * stops it at once. See docs/bots.md "Turn-taking".
   */
  interruptions?: InterruptionOptions;
  /**
   * With `turnDetection`: decides whether a pause (VAD silence) ends the caller's turn, e.g. an
   * ONNX model you supply (`onnxEndOfTurn({ model: 'smart-turn.onnx' })`), given the caller's
   * last 8 s of audio at 16 kHz and the words so far. Below its threshold `listen()` waits up to
   * `maxTurnPauseMs` (default 3 000) for the caller to go on.
   */
  endOfTurn?: EndOfTurnDetector;
  maxTurnPauseMs?: number;
  /**
   * RNNoise on the caller's audio before voice activity detection and a streaming speech-to-text
   * provider (Daily's own transcription runs on Daily's servers and hears the raw call).
   */
  noiseSuppression?: boolean;
  /**
   * Record the call (off unless the bot, its route's `config.recording` or RECORDING says so):
   * `daily`, Daily's cloud-audio-only recording; `local`, a file under RECORDINGS_DIR.
   * `consent`: a prompt said before recording starts (docs/operations.md, "Recording").
   */
  recording?: RecordingOptions;
  /**
   * Said the moment the caller is connected, before `onCall` runs: text, or `{ audio }`, a PCM16
   * WAV file (a path relative to the bot's file). With a warm room the speech is synthesized (the
   * file decoded) before the call and cached, so the caller hears it with no speech request.
   */
  greeting?: string | { audio: string };
  /** Runs in the idle worker before any call is assigned: load audio, models, clients. */
  prewarm?: () => void | Promise<void>;
  /** Every DTMF digit, also those consumed by `collectDigits`. */
  onDtmf?(call: Call, digit: string): void | Promise<void>;
  /** Every final transcript, also those consumed by `listen`. Transcription starts at connect when set. */
  onTranscript?(call: Call, text: string): void | Promise<void>;
  /**
   * Something failed that the call survives, e.g. the speech-to-text provider failed for good (an
   * `SttError`): the call goes on (with Daily's transcription when STT_FALLBACK=daily, and DTMF).
   */
  onError?(call: Call, error: Error): void | Promise<void>;
  /**
   * Outbound calls only: the far end is an answering machine and its beep (or the end of its
   * greeting) has passed. Runs instead of `onCall`: leave a message with `call.say()`; the call
   * ends when it returns. Without it, a machine is hung up on (outcome `completed`, detail `voicemail`).
   */
  onVoicemail?(call: Call, info: VoicemailInfo): void | Promise<void>;
  /** After the call ended, with its outcome. Primitives no longer work here. */
  onEnd?(call: CallInfo, outcome: Outcome): void | Promise<void>;
}

/**
 * A bot: its script (`onCall`), or a speech-to-speech model that holds the conversation
 * (`realtime: openaiRealtime({...})` / `geminiLive({...})`: the model hears the caller and answers
 * with its own voice, runs the tools, and is interrupted by the caller; docs/bots.md,
 * "Speech-to-speech"), or both: the service's VOICE_PIPELINE then picks one (src/sdk/pipeline.ts).
 */
export type BotOptions = BotBaseOptions &
  ({ onCall(call: Call): void | Promise<void>; realtime?: RealtimeChoice<Call> } | { realtime: RealtimeChoice<Call>; onCall?: undefined });

const BRAND = Symbol.for('patchbay.bot');
const FILE = Symbol.for('patchbay.bot.file');

export type Bot = Readonly<BotOptions> & { readonly [BRAND]: true };

const HOOKS = ['prewarm', 'onCall', 'onDtmf', 'onTranscript', 'onError', 'onVoicemail', 'onEnd'] as const;

export function defineBot(options: BotOptions): Bot {
  if (!options || typeof options.name !== 'string' || options.name.length === 0) {
    throw new TypeError('defineBot: `name` is required');
  }
  // Checked at run time too: plain JavaScript bots have no types.
  const given: { realtime?: unknown; onCall?: unknown } = options;
  const rt = checkRealtimeChoice(given.realtime);
  if (rt) throw new TypeError(`defineBot(${options.name}): ${rt}`);
  if (!given.realtime && typeof given.onCall !== 'function')
    throw new TypeError(`defineBot(${options.name}): \`onCall\` must be a function`);
  for (const h of HOOKS) {
    if (options[h] !== undefined && typeof options[h] !== 'function')
      throw new TypeError(`defineBot(${options.name}): \`${h}\` must be a function`);
  }
  for (const k of ['idleTimeoutMs', 'maxCallMs', 'maxTurnPauseMs'] as const) {
    const v = options[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)) {
      throw new TypeError(`defineBot(${options.name}): \`${k}\` must be a positive number of ms`);
    }
  }
  const v: unknown = options.version;
  if (v !== undefined && (typeof v !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$/.test(v)))
    throw new TypeError(`defineBot(${options.name}): \`version\` must be 1-64 letters, digits or _.:+- (e.g. "2.1.0")`);
  const sttProblem = checkSttChoice(options.stt);
  if (sttProblem) throw new TypeError(`defineBot(${options.name}): ${sttProblem}`);
  const ttsProblem = checkTtsChoice(options.tts);
  if (ttsProblem) throw new TypeError(`defineBot(${options.name}): ${ttsProblem}`);
  const g: unknown = options.greeting;
  const okGreeting =
    g === undefined ||
    (typeof g === 'string' && g.trim().length > 0) ||
    (typeof g === 'object' &&
      g !== null &&
      typeof (g as { audio?: unknown }).audio === 'string' &&
      (g as { audio: string }).audio.length > 0);
  if (!okGreeting) throw new TypeError(`defineBot(${options.name}): \`greeting\` must be a non-empty string or { audio: 'file.wav' }`);
  try {
    resolveInterruptions(options.interruptions);
  } catch (err) {
    throw new TypeError(`defineBot(${options.name}): ${errorMessage(err)}`, { cause: err });
  }
  const bot = { ...options, [BRAND]: true as const };
  const file = callerFile();
  if (file) Object.defineProperty(bot, FILE, { value: file, enumerable: false });
  return Object.freeze(bot);
}

/** The file that called defineBot() (from the stack), so the test harness can load it in a worker. */
function callerFile(): string | undefined {
  const stack = new Error().stack ?? '';
  const self = import.meta.url;
  for (const line of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?\/[^\s()]+?):\d+:\d+\)?\s*$/.exec(line.trim());
    if (!m?.[1]) continue;
    const loc = m[1];
    const href = loc.startsWith('file://') ? loc : `file://${loc}`;
    if (href.split('?')[0] === self.split('?')[0] || /\/sdk\/index\.[cm]?[jt]s$/.test(loc)) continue;
    try {
      return loc.startsWith('file://') ? fileURLToPath(loc.split('?')[0]!) : loc.split('?')[0];
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Where a bot was defined (absolute path), when known. */
export function botFileOf(bot: Bot): string | undefined {
  return (bot as unknown as Record<symbol, string | undefined>)[FILE];
}

export function isBot(value: unknown): value is Bot {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
