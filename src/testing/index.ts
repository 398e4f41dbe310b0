/**
 * Test harness for bot authors: runs a bot in a real worker process, behind the real app, against
 * the local Daily emulator, with a scripted caller; returns what happened.
 *
 *   import { runBotTest } from 'patchbay/testing';
 *   import menu from './ivr-menu.js';
 *
 *   const r = await runBotTest(menu, {
 *     caller: [{ waitFor: 'say', match: /sales/ }, { press: '1' }],
 *   });
 *   expect(r.outcome).toBe('completed');
 *   expect(r.transfer).toBe('sip:sales@pbx.example.com');
 *
 * `runBotTest` starts and stops everything for one call (~1 s of set-up). For many calls, keep one
 * harness: `const h = await createBotHarness(); await h.run(bot, {...}); await h.close();`.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../core/config.js';
import type { BotEvent, CallRecord } from '../admission/dispatcher.js';
import type { Outcome } from '../core/outcome.js';
import type { RouteResult } from '../admission/router.js';
import { createEmulator } from '../emulator/server.js';
import type { CallerStep, EmulatedCall, Emulator, EndReason, TranscriptLine } from '../emulator/types.js';
import { createLogger } from '../core/logger.js';
import { createRuntime, type Runtime } from '../app/runtime.js';
import { botFileOf, isBot, type Bot } from '../sdk/index.js';

/** One step of the scripted caller. `match` may be a RegExp (its source is used, case-insensitive). */
export type CallerAction =
  | { wait: number }
  | { press: string }
  | { say: string }
  /** Out loud: real speech (espeak-ng) the bot hears as audio (VAD, barge-in), then its words as a transcript. */
  | { speak: string }
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

export interface BotHarnessOptions {
  /** Directory the bots are loaded from (default: the directory of the first bot run). */
  botsDir?: string;
  /** Extra service settings (the same variables as the server's, e.g. OPENAI_API_KEY, LLM_BASE_URL). */
  env?: Record<string, string>;
  /** pino level for the stack (default: TEST_LOG_LEVEL or 'silent'). */
  logLevel?: string;
}

export interface BotHarness {
  run(bot: Bot | string, opts: BotTestOptions): Promise<BotTestResult>;
  readonly emulator: Emulator;
  readonly runtime: Runtime;
  close(): Promise<void>;
}

const DEFAULT_TO = '+15550001000';

/** Absolute file of a bot given as a Bot (from defineBot) or a path. */
export function resolveBotPath(bot: Bot | string): string {
  if (typeof bot === 'string') return path.resolve(bot);
  if (!isBot(bot)) throw new TypeError('runBotTest: pass the default export of a bot module (defineBot) or its file path');
  const file = botFileOf(bot);
  if (!file) throw new TypeError(`runBotTest: cannot tell which file defines bot "${bot.name}"; pass its path instead`);
  return file;
}

function botNameOf(file: string): string {
  const base = path.basename(file).replace(/\.[cm]?[jt]s$/, '');
  return base === 'index' ? path.basename(path.dirname(file)) : base;
}

function botDirOf(file: string): string {
  const dir = path.dirname(file);
  return path.basename(file).startsWith('index.') ? path.dirname(dir) : dir;
}

/**
 * Bots in TypeScript under the compiled package (this module is .js): the workers are plain
 * `node`, so they get tsx's loader (a dependency of patchbay) through NODE_OPTIONS, which forked
 * processes inherit, for as long as the harness lives. Returns the undo.
 */
function tsLoaderForWorkers(botsDir: string, firstBot: Bot | string | undefined): () => void {
  if (!import.meta.url.endsWith('.js')) return () => undefined; // source under tsx: workers run tsx already
  const first = firstBot !== undefined ? resolveBotPath(firstBot) : undefined;
  const ts =
    first !== undefined ? /\.[cm]?ts$/.test(first) : readdirSync(botsDir).some((f) => /\.[cm]?ts$/.test(f) && !f.endsWith('.d.ts'));
  const loader = `--import=${import.meta.resolve('tsx')}`;
  const before = process.env.NODE_OPTIONS;
  if (!ts || (before ?? '').includes(loader)) return () => undefined;
  process.env.NODE_OPTIONS = `${before ?? ''} ${loader}`.trim();
  return () => {
    if (before === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = before;
  };
}

/** One emulator + app + worker pool for many bot test calls. */
export async function createBotHarness(opts: BotHarnessOptions & { firstBot?: Bot | string } = {}): Promise<BotHarness> {
  const botsDir = opts.botsDir ?? (opts.firstBot !== undefined ? botDirOf(resolveBotPath(opts.firstBot)) : undefined);
  if (!botsDir) throw new TypeError('createBotHarness: give botsDir');
  const restoreLoader = tsLoaderForWorkers(botsDir, opts.firstBot);
  const level = opts.logLevel ?? process.env.TEST_LOG_LEVEL ?? 'silent';
  const logger = createLogger({ level, name: 'bot-test' });
  const apiKey = `test_${randomBytes(8).toString('hex')}`;
  const emulator = await createEmulator({ host: '127.0.0.1', port: 0, apiKey, logger: logger.child({ component: 'emulator' }) });
  const pending = new Map<string, RouteResult>();
  let runtime: Runtime;
  try {
    const config = loadConfig({
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: level,
      DAILY_PINLESS_HMAC: randomBytes(32).toString('base64'),
      IDLE_WORKERS: '1',
      EMULATOR_NUMBERS: DEFAULT_TO,
      BOTS_DIR: botsDir,
      TTS_PROVIDER: 'text',
      ...(opts.firstBot !== undefined ? { DEFAULT_BOT: botNameOf(resolveBotPath(opts.firstBot)) } : {}),
      WORKER_PING_INTERVAL_MS: '1000',
      WORKER_CLOSE_TIMEOUT_MS: '2000',
      ...opts.env,
    });
    runtime = await createRuntime(config, logger, {
      emulator: { instance: emulator, apiKey },
      // Each test call is routed to the bot (and settings) it was placed for.
      route: (call) => pending.get(call.callId) ?? { bot: config.bots.defaultBot },
      preloadBots: opts.firstBot !== undefined ? [botNameOf(resolveBotPath(opts.firstBot))] : [],
    });
    await runtime.listen();
  } catch (err) {
    await emulator.close();
    restoreLoader();
    throw err;
  }
  const ended = new Map<string, CallRecord>();
  const waiters = new Map<string, (r: CallRecord) => void>();
  runtime.dispatcher.on('call-ended', (r) => {
    ended.set(r.callId, r);
    waiters.get(r.callId)?.(r);
  });

  const ensureNumber = (to: string) => {
    const entries = emulator.getPinlessDialin();
    const isSip = /^sips?:/i.test(to);
    if (entries.some((e) => (isSip ? e.sip_uri === to : e.phone_number === to))) return;
    const base = entries[0];
    if (!base) return; // nothing routed to the service: the call ends not_in_service, reported below
    const { phone_number: _p, sip_uri: _s, ...rest } = base;
    emulator.setPinlessDialin([...entries, { ...rest, ...(isSip ? { sip_uri: to } : { phone_number: to }) }]);
  };

  return {
    emulator,
    runtime: runtime!,
    async run(bot, o) {
      const file = resolveBotPath(bot);
      if (path.resolve(botDirOf(file)) !== path.resolve(botsDir)) {
        throw new TypeError(`bot harness: ${file} is not in this harness's bots directory ${botsDir}`);
      }
      const name = botNameOf(file);
      const to = o.to ?? DEFAULT_TO;
      ensureNumber(to);
      const timeoutMs = o.timeoutMs ?? 30_000;
      const toSteps = (steps: CallerAction[]): CallerStep[] =>
        steps.map((s) => {
          if ('waitFor' in s) {
            const match = s.match instanceof RegExp ? s.match.source : s.match;
            return {
              waitFor: s.waitFor,
              ...(match !== undefined ? { match } : {}),
              timeoutMs: s.timeoutMs ?? o.waitForTimeoutMs ?? 10_000,
            };
          }
          return s;
        });
      const script = toSteps(o.caller);
      for (const [uri, a] of Object.entries(o.agents ?? {})) {
        emulator.setDialOutTarget(uri, {
          answer: a.answer ?? 'answer',
          ...(a.answerAfterMs !== undefined ? { answerAfterMs: a.answerAfterMs } : {}),
          script: toSteps(a.script ?? []),
        });
      }
      // Time on hold (cold worker, busy machine) does not count against the first `waitFor: 'say'`.
      const first = script[0];
      if (first && 'waitFor' in first && first.waitFor === 'say') script.unshift({ waitFor: 'connected', timeoutMs });
      const started = Date.now();
      const call: EmulatedCall = emulator.placeCall({
        to,
        from: o.from ?? '+15555550100',
        ...(o.sipHeaders ? { sipHeaders: o.sipHeaders } : {}),
        script,
      });
      pending.set(call.callId, { bot: name, ...(o.config ? { config: o.config } : {}) });
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          call.hangup();
          reject(new BotTestError(`bot test: the call did not end within ${timeoutMs} ms (bot "${name}")`, call.transcript));
        }, timeoutMs);
      });
      const recordP = new Promise<CallRecord>((resolve) => {
        const have = ended.get(call.callId);
        if (have) return resolve(have);
        waiters.set(call.callId, resolve);
      });
      // A call the service never took (not in service, webhook refused) ends on the caller's side only.
      let orphanTimer: NodeJS.Timeout | undefined;
      let serviceDone = false;
      const orphan = call.ended.then(
        (end) =>
          new Promise<never>((_, reject) => {
            if (serviceDone) return;
            orphanTimer = setTimeout(() => {
              const hook = call.webhook
                ? ` (webhook: ${call.webhook.status ?? call.webhook.error ?? 'no answer'})`
                : ' (no webhook was sent)';
              reject(new BotTestError(`bot test: the call ended (${end.reason}) but the service never reported it${hook}`, end.transcript));
            }, 5_000);
          }),
      );
      try {
        const record = await Promise.race([recordP, deadline, orphan]).finally(() => {
          serviceDone = true;
          clearTimeout(orphanTimer);
        });
        // The service is done with the call. A caller it never connected stays on hold (as with
        // Daily, until the hold timeout): hang up for them. A connected one gets a moment to be ejected.
        if (call.state === 'held') call.hangup();
        const grace = setTimeout(() => call.hangup(), 5_000);
        const callerEnd = await Promise.race([call.ended, deadline]).finally(() => clearTimeout(grace));
        const events = record.botEvents;
        const of = (k: string) => events.filter((e) => e.kind === k).map((e) => e.value);
        const transcript = [...callerEnd.transcript];
        const scriptProblem = transcript.find((l) => l.who === 'system' && l.text.startsWith('script:'));
        if (scriptProblem && !o.allowScriptTimeout) {
          throw new BotTestError(
            `bot test: caller ${scriptProblem.text.replace(/^script:\s*/, '')} (outcome ${record.outcome}${record.detail ? `: ${record.detail}` : ''})`,
            transcript,
          );
        }
        const transfers = of('transfer');
        const warm = transfers.find((t) => t.startsWith('warm: '));
        const agents = emulator.dialOutCalls(record.roomName).map((c) => ({
          to: c.to,
          transcript: [...c.transcript],
          state: c.state,
          end: c.reason,
        }));
        const connectedAt = transcript.find((l) => l.who === 'system' && l.text.startsWith('connected to room'))?.atMs;
        const firstBot = transcript.find((l) => l.who === 'bot');
        const firstAudioMs = connectedAt !== undefined && firstBot ? firstBot.atMs - connectedAt : undefined;
        const turnLatenciesMs: number[] = [];
        for (let i = 0; i < transcript.length; i++) {
          const l = transcript[i]!;
          if (l.who !== 'caller' || l.text === '[hangs up]') continue;
          const next = transcript.slice(i + 1).find((x) => x.who === 'bot' || (x.who === 'caller' && x.text !== l.text));
          if (next?.who === 'bot') turnLatenciesMs.push(next.atMs - l.atMs);
        }
        const b = o.budgets;
        if (b?.firstAudioWithinMs !== undefined && (firstAudioMs === undefined || firstAudioMs > b.firstAudioWithinMs)) {
          throw new BotTestError(
            `bot test: first bot audio ${firstAudioMs ?? 'never'} ms after connect (budget ${b.firstAudioWithinMs} ms)`,
            transcript,
          );
        }
        const slow = b?.turnWithinMs === undefined ? undefined : turnLatenciesMs.find((ms) => ms > b.turnWithinMs!);
        if (slow !== undefined) throw new BotTestError(`bot test: a turn took ${slow} ms (budget ${b!.turnWithinMs} ms)`, transcript);
        return {
          outcome: record.outcome!,
          detail: record.detail,
          said: of('say'),
          digits: of('digits'),
          heard: of('transcript'),
          played: of('play'),
          transfer: transfers.find((t) => !t.startsWith('warm: ') && !t.startsWith('bridged: ')),
          warmTransfer: warm
            ? { target: warm.slice('warm: '.length), bridged: transfers.some((t) => t.startsWith('bridged: ')) }
            : undefined,
          agents,
          interruptions: transcript.filter((l) => l.who === 'system' && l.text === 'bot audio interrupted').length,
          firstAudioMs,
          turnLatenciesMs,
          hangup: of('hangup')[0],
          events: [...events],
          transcript,
          callerEnd: callerEnd.reason,
          record,
          durationMs: Date.now() - started,
        };
      } finally {
        clearTimeout(timer);
        waiters.delete(call.callId);
        pending.delete(call.callId);
        ended.delete(call.callId);
      }
    },
    async close() {
      await runtime.shutdown(0);
      await emulator.close();
      restoreLoader();
    },
  };
}

/** Runs one scripted call against `bot` (its module, or its file path) and tears everything down. */
export async function runBotTest(bot: Bot | string, opts: BotTestOptions & BotHarnessOptions): Promise<BotTestResult> {
  const { botsDir, env, logLevel, ...run } = opts;
  const h = await createBotHarness({
    firstBot: bot,
    ...(botsDir ? { botsDir } : {}),
    ...(env ? { env } : {}),
    ...(logLevel ? { logLevel } : {}),
  });
  try {
    return await h.run(bot, run);
  } finally {
    await h.close();
  }
}

// Stand-ins of the voice vendors' APIs, for a bot's own tests and benchmarks.
export { startVoiceStandIns, type StandInOptions, type VoiceStandIns } from './voice-standins.js';
export { startLlmStandIns, type LlmStandInOptions, type LlmStandIns, type StandInTurn } from './llm-standins.js';
