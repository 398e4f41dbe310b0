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
import { loadConfig } from '../core/config.js';
import type { CallRecord } from '../admission/dispatcher.js';
import type { RouteResult } from '../admission/router.js';
import { createEmulator } from '../emulator/server.js';
import type { Emulator } from '../emulator/types.js';
import { createLogger } from '../core/logger.js';
import { createRuntime, type Runtime } from '../app/runtime.js';
import type { Bot } from '../sdk/index.js';

export * from './types.js';
import type { BotTestOptions, BotTestResult } from './types.js';
import { DEFAULT_TO, runHarnessCall, type HarnessCallContext } from './harness-run.js';
import { botDirOf, botNameOf, resolveBotPath } from './bot-paths.js';
export { resolveBotPath } from './bot-paths.js';

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

  const ctx: HarnessCallContext = { emulator, botsDir, pending, ended, waiters };
  return {
    emulator,
    runtime: runtime!,
    run: (bot, o) => runHarnessCall(ctx, bot, o),
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
export {
  startDeepgramStandIn,
  type DeepgramStandIn,
  type DeepgramStandInOptions,
  type DeepgramConnection,
  type FinalTiming,
} from './stt-standins.js';
export { EnergySegmenter, PhraseBook, voicedSegments, type EnergyOptions, type VoicedSegment } from './speech-energy.js';
export { startAssemblyAiStandIn, type AssemblyAiStandIn, type AssemblyAiStandInOptions } from './stt-standin-assemblyai.js';
export { startOpenAiSttStandIn, type OpenAiSttStandIn, type OpenAiSttStandInOptions, type OpenAiSttRequest } from './stt-standin-openai.js';
export { startCartesiaStandIn, type CartesiaStandIn, type CartesiaStandInOptions, type CartesiaFault } from './cartesia-standin.js';
export {
  startElevenLabsStandIn,
  type ElevenLabsStandIn,
  type ElevenLabsStandInOptions,
  type ElevenLabsFault,
} from './elevenlabs-standin.js';
export {
  startOpenAiRealtimeStandIn,
  type OpenAiRealtimeStandIn,
  type OpenAiRealtimeStandInOptions,
  type RealtimeConnection,
  type RealtimeFault,
  type RealtimeReply,
  type RealtimeTurn,
} from './openai-realtime-standin.js';
export {
  startGeminiLiveStandIn,
  type GeminiLiveStandIn,
  type GeminiLiveStandInOptions,
  type GeminiConnection,
} from './gemini-live-standin.js';
