/** The bot test harness's vocabulary: the scripted caller, the options and the result. */
import type { BotEvent, CallRecord } from '../admission/dispatcher.js';
import type { Outcome } from '../core/outcome.js';
import type { EndReason, TranscriptLine } from '../emulator/types.js';

/** One step of the scripted caller. `match` may be a RegExp (its source is used, case-insensitive). */
export type CallerAction =
  | { wait: number }
  | { press: string }
  /** Heard out loud by a bot that receives audio (VAD, a speech-to-text vendor), as words at once by the others; `noise`: see the emulator's CallerStep. */
  | { say: string; noise?: number }
  /** Out loud: real speech (espeak-ng) the bot hears as audio (VAD, barge-in), then its words as a transcript. */
  | { speak: string; noise?: number }
  /** A voice with no words (a laugh, a cough): real audio of the syllables, and no transcript follows. */
  | { sound: string }
  | { waitFor: 'connected' | 'say' | 'peer'; match?: RegExp | string; timeoutMs?: number }
  | { hangup: true };

/** A human the bot may dial (warm transfer): how they answer, and what they do once on the line. */
export interface AgentScript {
  /** `answer` (default, after `answerAfterMs`), `busy`, `unreachable`, or `no-answer`. */
  answer?: 'answer' | 'busy' | 'unreachable' | 'no-answer';
  answerAfterMs?: number;
  /** What the agent does once they answered (`waitFor: 'say'` waits for the bot's briefing, `'peer'` for the caller). */
  script?: CallerAction[];
}

/** Latency budgets the call must meet (ms); a miss fails the test with the transcript. */
export interface LatencyBudgets {
  /** Caller connected → the bot's first words. */
  firstAudioWithinMs?: number;
  /** Each caller line (words or keys) → the bot's next words. */
  turnWithinMs?: number;
}

export interface BotTestOptions {
  /** What the caller does, in order. The call goes on until the bot or the caller ends it. */
  caller: CallerAction[];
  /** Caller's number. Default +15555550100. */
  from?: string;
  /** Number (or SIP URI) called. Default +15550001000. */
  to?: string;
  sipHeaders?: Record<string, string>;
  /** `call.config` for the bot (what the routing file would give it). */
  config?: Record<string, unknown>;
  /** Give up after this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Default timeout of `waitFor` steps (default 10 000 ms). */
  waitForTimeoutMs?: number;
  /** Don't throw when a `waitFor` step timed out (default false: throw with the transcript). */
  allowScriptTimeout?: boolean;
  /** Humans the bot may dial out to, by SIP URI or phone number (warm transfer). */
  agents?: Record<string, AgentScript>;
  budgets?: LatencyBudgets;
}

export interface BotTestResult {
  outcome: Outcome;
  /** Why, in words (e.g. "transferred to sip:…", "onCall: … (bots/x.ts:12:5)"). */
  detail: string | undefined;
  /** Every `say()`, in order. */
  said: string[];
  /** Every `collectDigits()` result, in order ('' when nothing was pressed). */
  digits: string[];
  /** Final transcripts of the caller the bot received. */
  heard: string[];
  /** `play()` calls (file or sample count). */
  played: string[];
  /** The steps the bot marked (`call.step()`, `step` options), in order. */
  steps: string[];
  /** The bot's version as its worker loaded it (declared, else the hash of its files). */
  version: string | undefined;
  /** The transfer target, when the bot transferred the caller (blind transfer). */
  transfer: string | undefined;
  /** A warm transfer the bot attempted: to whom, and whether caller and agent were put through. */
  warmTransfer: { target: string; bridged: boolean } | undefined;
  /** The dialled humans' side of the call (what each heard and said), in dialling order. */
  agents: Array<{ to: string; transcript: TranscriptLine[]; state: string; end: EndReason | undefined }>;
  /** Times the caller cut the bot off (the bot's audio was interrupted). */
  interruptions: number;
  /** Caller connected → the bot's first words, in ms (undefined when the bot never spoke). */
  firstAudioMs: number | undefined;
  /** For each caller line (words or keys) answered by the bot: ms to the bot's next words. */
  turnLatenciesMs: number[];
  /** The reason given to `hangup()`, when the bot hung up. */
  hangup: string | undefined;
  /** Everything the bot did, with times. */
  events: BotEvent[];
  /** The call as the caller lived it (bot lines, caller lines, system lines). */
  transcript: TranscriptLine[];
  /** How the call ended for the caller (emulator's view). */
  callerEnd: EndReason;
  /** The dispatcher's record: timeline, worker pid, room. */
  record: CallRecord;
  durationMs: number;
}

export class BotTestError extends Error {
  override name = 'BotTestError';
  constructor(
    message: string,
    readonly transcript: readonly TranscriptLine[],
  ) {
    super(`${message}\n--- transcript ---\n${formatTranscript(transcript)}`);
  }
}

export function formatTranscript(lines: readonly TranscriptLine[]): string {
  return lines.map((l) => `${String(l.atMs).padStart(6)} ms  ${l.who.padEnd(6)} ${l.text}`).join('\n');
}
