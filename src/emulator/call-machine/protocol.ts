/**
 * The two protocols of the call-machine stand-in.
 *
 * 1. daily-js ⇄ call machine (private to Daily, observed in daily-js 0.92.2, pinned):
 *    daily-js loads `${dailyConfig.bundlePathOverride}/call-machine-object-bundle.js`, pushes the
 *    call client id on `window._daily.pendings` first, and expects the bundle to set
 *    `window._daily.instances[id].callMachine = {store: {getState()}, reset()}`. Both sides then
 *    talk with `window.postMessage({what: 'iframe-call-message', from, callClientId, action, …})`,
 *    `from: 'module'` for daily-js → machine and `'embedded'` for machine → daily-js. A module
 *    message with `callbackStamp` waits for a machine message echoing it (`error` rejects).
 *    Remote media tracks are not in messages: daily-js reads them from the store's `streams`.
 *
 * 2. stand-in bundle (in the page) ⇄ stand-in server (Node), JSON over a WebSocket. The bundle is
 *    a relay: every module message goes to the server, which decides what the "platform" does.
 */

/** The daily-js version whose private protocol this stand-in speaks. Bump only after the contract test passes. */
export const DAILY_JS_VERSION = '0.92.2';

/** File name daily-js appends to `bundlePathOverride`. */
export const CALL_MACHINE_BUNDLE_FILE = 'call-machine-object-bundle.js';

/** Strings in daily-js's dist/daily.js that the stand-in depends on (the contract test checks them). */
export const PRIVATE_PROTOCOL_MARKERS: readonly string[] = [
  'iframe-call-message',
  'call-machine-initialized',
  'call-machine-object-bundle.js',
  'pendings',
  'callbackStamp',
  'callMachine',
  'getState',
  'join-meeting',
  'leave-meeting',
  'send-dtmf',
  'sip-call-transfer',
  'update-participant',
  'app-msg',
  'daily-method-start-transcription',
  'daily-method-stop-transcription',
  'pendingTrack',
  'participantId',
  'bundlePathOverride',
  'avoidEval',
];

/** bundle → server */
export type BundleToServer =
  | { t: 'hello'; callClientId: string; href: string }
  /** A message daily-js sent to the call machine; `msg` lacks what/from/callClientId/callbackStamp. */
  | { t: 'action'; callClientId: string; action: string; callbackStamp?: string; msg: Record<string, unknown> }
  /**
   * The bot's microphone crossed the activity threshold (RMS 0..1 over a 43 ms window, polled every
   * 20 ms). `rms`: the crossing level when it becomes active, the peak of the stretch when it ends.
   */
  | { t: 'mic'; callClientId: string; active: boolean; rms: number }
  /**
   * The page started (or cancelled) playing a clip into the bot's microphone. Only the patchbay
   * page announces this (a `patchbay-audio` DOM event); Daily's real call machine ignores it.
   * The emulator bridge uses it to give the emulated caller the bot's words.
   */
  | { t: 'speak'; callClientId: string; id: number; text?: string; durationMs: number }
  | { t: 'speak-cancel'; callClientId: string; id: number }
  /**
   * The page started (or stopped) reading remote audio (a `patchbay-receive-audio` DOM event, only
   * the patchbay page sends it). The emulator bridge then asks the emulator for the callers' audio.
   */
  | { t: 'receive-audio'; callClientId: string; enabled: boolean };

/** server → bundle */
export type ServerToBundle =
  /** Answer a module message that carried a callbackStamp. */
  | { t: 'reply'; callbackStamp: string; error?: unknown; data?: Record<string, unknown> }
  /**
   * Deliver a call-machine message to daily-js. The bundle keeps its store in step for
   * `joined-meeting`, `participant-joined`/`-updated` (with `toneHz`: a sine track as the
   * participant's audio) and `participant-left`.
   */
  | { t: 'post'; msg: { action: string } & Record<string, unknown>; toneHz?: number; loopback?: boolean; feed?: boolean }
  /**
   * Bridge mode: one frame of a remote participant's audio (PCM16 mono little-endian, base64, at
   * `r` Hz), played into that participant's track (`feed` posts give every remote participant one).
   */
  | { t: 'audio'; p: string; r: number; pcm: string };
