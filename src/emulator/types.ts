/** Public types of the Daily emulator. */
import type { Logger } from 'pino';
import type { DialinReadyMode, FaultSpec, FaultsUpdate, RateLimit } from './fault-schema.js';
import type { RateLimitClass, RateLimitSettings, RateWindow } from './rate-limits.js';

export type { RateLimitClass, RateLimitSettings, RateWindow } from './rate-limits.js';

/** Simulated latencies of the emulated platform, in ms. All 0 by default (tests). */
export interface Latencies {
  /** POST /rooms. */
  roomCreateMs: number;
  /** POST /meeting-tokens. */
  tokenCreateMs: number;
  /** DELETE /rooms/:name. */
  roomDeleteMs: number;
  /** WebSocket `join` → `joined`. */
  joinMs: number;
  /** First participant joined → `dialin-ready` (SIP worker registration). */
  dialinReadyMs: number;
  /** POST /dialin/pinlessCallUpdate answer time. */
  pinlessUpdateMs: number;
  /** Accepted pinlessCallUpdate → caller patched into the room. */
  connectMs: number;
  /** Call placed → pinless webhook sent to `room_creation_api`. */
  webhookMs: number;
  /**
   * How far behind `GET /rooms/:name/presence` is: it lists who was in the room this long ago (Daily
   * documents its presence data as up to 15 s behind).
   */
  presenceLagMs: number;
}

export const zeroLatencies: Readonly<Latencies> = Object.freeze({
  roomCreateMs: 0,
  tokenCreateMs: 0,
  roomDeleteMs: 0,
  joinMs: 0,
  dialinReadyMs: 0,
  pinlessUpdateMs: 0,
  connectMs: 0,
  webhookMs: 0,
  presenceLagMs: 0,
});

/** Plausible values (order of magnitude of what Daily shows) for demos and benchmarks. */
export const realisticLatencies: Readonly<Latencies> = Object.freeze({
  roomCreateMs: 250,
  tokenCreateMs: 80,
  roomDeleteMs: 150,
  joinMs: 900,
  dialinReadyMs: 1_500,
  pinlessUpdateMs: 200,
  connectMs: 700,
  webhookMs: 400,
  presenceLagMs: 15_000,
});

/** One entry of the domain's `pinless_dialin` property (Daily's shape). */
export interface PinlessDialinEntry {
  phone_number?: string;
  /** Daily fills this in (SIP interconnect address); the emulator generates one when absent. */
  sip_uri?: string;
  name_prefix?: string;
  room_creation_api: string;
  /** base64 secret; when set, webhooks carry X-Pinless-Timestamp / X-Pinless-Signature. */
  hmac?: string;
  hold_music_url?: string;
  timeout_config?: { message?: string };
  ivr_greeting?: { message?: string };
}

export interface EmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** Bearer key the REST API accepts. */
  apiKey: string;
  /** The emulated Daily domain (used in SIP URIs). Default 'emulator'. */
  domainName?: string;
  logger?: Logger;
  latencies?: Partial<Latencies>;
  /** How long a held call waits for pinlessCallUpdate before the timeout message and hang-up. Default 60 000. */
  holdTimeoutMs?: number;
  /** Gap between DTMF tones of one `press`. Default 100. */
  dtmfGapMs?: number;
  /** Timeout of the webhook POST to `room_creation_api`. Default 10 000. */
  webhookTimeoutMs?: number;
  /**
   * Daily's REST rate limits (rate-limits.ts): on by default, domain-wide like Daily's.
   * `false` turns them off (tests that test something else and burst); an object changes scope or windows.
   */
  rateLimits?: boolean | RateLimitSettings;
  /** Domain webhooks (`/v1/webhooks`, src/emulator/webhooks.ts): verification and delivery timeouts, first retry gap. */
  domainWebhooks?: { verifyTimeoutMs?: number; deliveryTimeoutMs?: number; retryBaseMs?: number };
  /** Where cloud recordings (WAV) are written. Default: a fresh directory under the OS temp dir. */
  recordingsDir?: string;
}

export type CallerStep =
  | { wait: number }
  | { press: string }
  /**
   * The caller says something. Bots that receive audio (voice activity, a speech-to-text provider)
   * hear it out loud like `speak`; for the others the words arrive at once, as Daily's transcript.
   * `noise`: white noise mixed into the audio, its RMS relative to the speech's (0.3 ≈ 10 dB SNR).
   */
  | { say: string; noise?: number }
  /** Out loud: real speech audio (espeak-ng) to bots that receive audio, then the words as a transcript. */
  | { speak: string; noise?: number }
  /** A voice with no words (a laugh, a cough): espeak-ng audio of the syllables, and no transcript. */
  | { sound: string }
  /** `say`: the next bot line; `peer`: the next line from another phone participant (see TranscriptLine). */
  | { waitFor: 'connected' | 'say' | 'peer'; match?: string; timeoutMs?: number }
  | { hangup: true };

/**
 * A withheld caller ID, as it may reach the pinless webhook's `From` (Daily documents none; these
 * are the forms carriers and SIP use): `anonymous`, `Anonymous`, `restricted`, `unavailable`,
 * `empty` (""), `sip-anonymous` (`sip:anonymous@anonymous.invalid`, RFC 3261 §8.1.1.3 / RFC 5767),
 * `absent` (no `From` in the webhook at all).
 */
export type WithheldStyle = 'anonymous' | 'Anonymous' | 'restricted' | 'unavailable' | 'empty' | 'sip-anonymous' | 'absent';

export interface PlaceCallOptions {
  /** A phone number or SIP URI configured in pinless_dialin. */
  to: string;
  /** The caller's number (any string, even ""); default a random +1555… number. Ignored with `withheld`. */
  from?: string;
  /** Place the call with a withheld caller ID in this form. */
  withheld?: WithheldStyle;
  sipHeaders?: Record<string, string>;
  script?: CallerStep[];
}

export type CallState = 'held' | 'connected' | 'ended';

export type EndReason =
  | 'not_in_service'
  | 'hold_timeout'
  | 'forwarded_before_ready'
  | 'caller_hangup_on_hold'
  | 'caller_hangup'
  | 'ejected'
  | 'room_closed'
  | 'transferred'
  | 'script_timeout'
  | 'emulator_closed'
  /** Dial-out legs: the far end was busy, unreachable, did not answer, or the bot stopped the leg. */
  | 'busy'
  | 'unreachable'
  | 'no_answer'
  | 'stopped';

export interface TranscriptLine {
  /** ms since the call was placed. */
  atMs: number;
  /** `peer`: another phone participant of the room (a dialled-out agent, or the caller, as the agent hears them). */
  who: 'bot' | 'caller' | 'peer' | 'system';
  text: string;
}

export interface CallEnd {
  reason: EndReason;
  transcript: TranscriptLine[];
}

export interface CallEventMap {
  state: CallState;
  transcript: TranscriptLine;
  ended: CallEnd;
}

export interface WebhookRecord {
  url: string;
  /** HTTP status of the answer; undefined when the request failed. */
  status?: number;
  error?: string;
  sentAtMs: number;
}

export interface EmulatedCall {
  /** Emulator id (control API). */
  readonly id: string;
  /** Daily's call id (UUID), as in the webhook. */
  readonly callId: string;
  readonly callDomain: string;
  readonly to: string;
  readonly from: string;
  readonly state: CallState;
  readonly reason: EndReason | undefined;
  readonly transcript: readonly TranscriptLine[];
  readonly webhook: WebhookRecord | undefined;
  /** The SIP participant's session id once connected. */
  readonly sessionId: string | undefined;
  readonly ended: Promise<CallEnd>;
  on<E extends keyof CallEventMap>(event: E, fn: (payload: CallEventMap[E]) => void): () => void;
  /** DTMF digits, one `dtmf-event` each, `dtmfGapMs` apart. Resolves after the last one. */
  press(digits: string): Promise<void>;
  /** Says `text` (out loud to bots that receive audio; see the `say` step). Resolves when it was said. */
  say(text: string, opts?: { noise?: number }): Promise<void>;
  hangup(): void;
}

export type { DialinReadyMode, FaultSpec, FaultsUpdate, RateLimit } from './fault-schema.js';

export interface FaultControl {
  inject(f: FaultSpec): void;
  /** Applies a `POST /_emulator/faults` body (inject, dialinReady, dialinReadyDelayMs, rateLimit). */
  apply(u: FaultsUpdate): void;
  /** Removes injected faults, rate limit, and resets dialinReady/dialinReadyDelayMs. */
  clear(): void;
  dialinReady: DialinReadyMode;
  /** Extra delay before dialin-ready, on top of latencies.dialinReadyMs. */
  dialinReadyDelayMs: number;
  rateLimit: RateLimit | null;
  /** Faults not yet used up. */
  readonly pending: readonly FaultSpec[];
}

/** One /v1 request as the emulator answered it (for tests: "how many updates for this call?"). */
export interface RequestLogEntry {
  /** Date.now() when the request arrived. The entry itself is added once the answer is sent. */
  atMs: number;
  method: string;
  /** Path under /v1, without query. */
  path: string;
  status: number;
  /** Date.now() when the answer was sent. */
  answeredAtMs?: number;
  /** `callId` of a pinlessCallUpdate body. */
  callId?: string;
}

/** One POST to a `room_creation_api`: a call's webhook or a configuration probe. */
export interface WebhookLogEntry {
  atMs: number;
  kind: 'call' | 'probe';
  url: string;
  status?: number;
  error?: string;
  callId?: string;
}

export interface EmulatorSnapshot {
  rooms: Array<{
    name: string;
    sipEndpoints: Array<{ uri: string; ready: boolean; callId?: string }>;
    participants: Array<{ sessionId: string; userName?: string; isSip: boolean; owner: boolean }>;
    transcription: boolean;
  }>;
  calls: Array<{ id: string; callId: string; to: string; state: CallState; reason?: EndReason }>;
  /** Open call-client WebSockets (bots). */
  clients: number;
  /** Open WebSockets (call clients and event streams). */
  sockets: number;
  /** Pending emulator timers. */
  timers: number;
  /** Webhook requests in flight. */
  webhooksInFlight: number;
}

/** How a dialled-out far end behaves (`Emulator.setDialOutTarget`, `PUT /_emulator/dial-out-targets`). */
export interface DialOutTarget {
  /**
   * `answer` (after `answerAfterMs`), `busy`, `unreachable`, `no-answer` (rings for `ringMs`, default
   * 30 s), or `voicemail`: an answering machine (after `answerAfterMs`) that plays `greeting` (espeak-ng
   * speech), then a beep (sox, `beepHz`, 0 = no beep), then records silence for `recordMs` and hangs up.
   */
  answer: 'answer' | 'busy' | 'unreachable' | 'no-answer' | 'voicemail';
  answerAfterMs?: number;
  /** voicemail: what the machine says (default: a typical "leave a message after the tone"). */
  greeting?: string;
  /** voicemail: the beep's frequency in Hz (default 1 000; 0: no beep). */
  beepHz?: number;
  /** voicemail: how long it records after the beep before hanging up (default 20 s). */
  recordMs?: number;
  ringMs?: number;
  /** What the far end does once it answered (the same steps as a caller's script). */
  script?: CallerStep[];
}

export interface Emulator {
  readonly origin: string;
  readonly apiUrl: string;
  /** The emulated domain's callDomain (UUID). */
  readonly callDomain: string;
  setPinlessDialin(entries: PinlessDialinEntry[]): void;
  getPinlessDialin(): PinlessDialinEntry[];
  placeCall(opts: PlaceCallOptions): EmulatedCall;
  getCall(id: string): EmulatedCall | undefined;
  readonly faults: FaultControl;
  /** The last 10 000 /v1 requests, oldest first (faulted and refused ones included). */
  readonly requestLog: readonly RequestLogEntry[];
  /** The last 10 000 webhooks and probes sent to `room_creation_api` URLs, oldest first. */
  readonly webhookLog: readonly WebhookLogEntry[];
  setLatencies(l: Partial<Latencies>): void;
  /** How the far end at a SIP URI or phone number answers a dial-out; its leg is then a call in `getCall`/`snapshot`. */
  setDialOutTarget(uri: string, target: DialOutTarget): void;
  /** The dial-out legs of a room (its far ends' side: transcript, state), oldest first. */
  dialOutCalls(roomName: string): EmulatedCall[];
  /** The legs dialled to `target` (a number or SIP URI) from any room, oldest first. */
  dialOutsTo(target: string): EmulatedCall[];
  /** Daily's rate limits, changeable while running (also `GET/PUT /_emulator/rate-limits`). */
  readonly rateLimits: RateLimitControl;
  snapshot(): EmulatorSnapshot;
  /**
   * Watches what leaves a caller for the bots: their audio frames and the transcripts of Daily's
   * emulated transcription (benchmarks: when the caller's last word left). Returns the unsubscribe.
   */
  watchCaller(fn: (e: CallerSignal) => void): () => void;
  close(): Promise<void>;
}

/** What left a caller for the bots, stamped with Date.now() right after it was handed to their sockets. */
export type CallerSignal =
  /** One 20 ms frame of the caller's speech (also while no bot receives audio: the caller speaks anyway). */
  | { kind: 'frame'; callId: string; roomName: string; pcm: Int16Array; sampleRate: number; sentAtMs: number }
  /** Daily's transcription of the caller, sent to the bots (only while transcription runs). */
  | { kind: 'transcript'; callId: string; roomName: string; text: string; sentAtMs: number };

export interface RateLimitControl {
  readonly enabled: boolean;
  settings(): { enabled: boolean; scope: 'domain' | 'client'; classes: Record<RateLimitClass, RateWindow[]> };
  /** Changes what is given (e.g. `{enabled: false}`); forgets the requests counted so far. */
  update(s: RateLimitSettings): void;
}
