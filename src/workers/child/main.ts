/**
 * Worker process entry (forked by the dispatcher; one call, then exit).
 *
 * init → load bots + prepare the call client (browser launch for the daily client) → ready.
 * start → run the call → done → close the client → exit.
 * When its parent disappears (IPC disconnect) an idle worker exits; one with a live call finishes
 * it on its own and leaves its outcome for the restarted service (src/workers/orphans.ts).
 */
import { warmFetch } from '../../core/warm-fetch.js';
import type { CallClient } from '../../daily/call-client.js';
import type { BotVersionInfo, CallAssignment, ChildMessage, ForwardResult, WarmRoom, WorkerInit } from '../protocol.js';
import { isParentMessage } from '../protocol.js';
import type { Outcome } from '../../core/outcome.js';
import { createLogger, type Logger } from '../../core/logger.js';
import type { LlmProvider } from '../../voice/llm.js';
import { loadLlm } from '../../voice/llm-load.js';
import { createTts, fallbackTts, type TtsProvider } from '../../voice/tts.js';
import { cachingTts } from '../../voice/tts-cache.js';
import { BotLoadError, botFrame, loadBot, resolveBotFile, type LoadedBot } from './bot-loader.js';
import { createCallClient, memoryReport } from './client-factory.js';
import { runCall } from './call-runner.js';
import { onRateGrant } from './rate-grant.js';
import { warmUp, type WarmState } from './warm.js';
import { preloadStt } from './call-stt.js';
import { warmBotTts } from './call-tts.js';
import { errorMessage } from '../../core/errors.js';
import { writeOrphanEnd, writeOrphanLive, type OrphanCall } from '../orphans.js';
import { releaseGrants } from './rate-grant.js';

if (!process.send) {
  console.error('patchbay worker: must be started by the dispatcher (no IPC channel)');
  process.exit(2);
}

let logger: Logger = createLogger({ name: 'worker', level: 'info' });
let init: WorkerInit | undefined;
let client: CallClient | undefined;
let prepared: Promise<void> | undefined;
let callRunning = false;
let tts: TtsProvider | undefined;
/** What a streamed say() falls back to when the vendor fails (espeak-ng or text). */
let ttsFallback: TtsProvider | undefined;
let llm: LlmProvider | undefined;
/** Bots whose prewarm() threw: their calls end with bot_load_failed, other bots still work. */
const prewarmFailed = new Map<string, BotLoadError>();
let currentBotFile: string | undefined;
/** Set when the bot's code threw outside any handler (timer, stray promise): the call's outcome detail. */
let escapedError: string | undefined;
let exiting = false;
/** Set once the parent made this worker a warm slot (`warm`). */
let warm: WarmState | undefined;
const hangup = new AbortController();
/** The live call as an orphan would leave it (stages as reported); set once the parent is gone. */
let current: OrphanCall | undefined;
let orphaned = false;
/** A warm call whose update the parent sends: resolved by its `forward-result` (undefined when the parent is gone). */
let parentForward: ((r: ForwardResult | undefined) => void) | undefined;

function send(msg: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    try {
      process.send!(msg, undefined, {}, () => resolve());
    } catch {
      resolve();
    }
  });
}

async function exit(code: number): Promise<never> {
  if (!exiting) {
    exiting = true;
    await Promise.race([client?.close().catch(() => undefined), new Promise((r) => setTimeout(r, 3_000).unref())]);
  }
  if (process.connected) process.disconnect();
  process.exit(code);
}

async function onInit(i: WorkerInit): Promise<void> {
  init = i;
  logger = createLogger({
    name: 'worker',
    level: i.logLevel,
    maskNumbers: i.maskNumbers ?? true,
    secrets: [
      i.dailyApiKey,
      i.llm?.apiKey,
      i.tts?.apiKey,
      ...Object.values(i.tts?.vendors ?? {}).map((v) => v.apiKey),
      i.stt?.deepgram?.apiKey,
      i.stt?.assemblyai?.apiKey,
      i.stt?.openai?.apiKey,
    ],
  });
  const started = Date.now();
  const bots: Record<string, BotVersionInfo> = {};
  const failed: Record<string, string> = {};
  try {
    // Pay start-up costs now, before a call is assigned: bot code and the call client.
    for (const name of i.preloadBots) {
      const loaded = await loadBot(i.botsDir, name, i.realtime?.pipeline).catch((err: unknown) => {
        logger.error(
          { bot: name, botFile: err instanceof BotLoadError ? err.file : undefined, err: errorMessage(err) },
          'bot failed to preload',
        );
        failed[name] = errorMessage(err);
        return undefined;
      });
      if (loaded?.bot.prewarm) await prewarm(name, loaded);
      if (loaded?.bot.tts) await warmBotTts(i, loaded.bot.tts, logger);
      // Only bots that can take a call: the parent forwards a warm call at once only to one of these.
      if (loaded && !prewarmFailed.has(name)) bots[name] = { version: loaded.version, hash: loaded.hash };
      else if (prewarmFailed.has(name)) failed[name] = prewarmFailed.get(name)!.message;
    }
    const baseTts = createTts(i.tts, { callClient: i.callClient, logger });
    const keyParts = [i.tts?.voice ?? '', i.tts?.model ?? '', String(i.tts?.sampleRate ?? 16_000)];
    tts = cachingTts(baseTts, { entries: i.tts?.cacheEntries ?? 64, dir: i.tts?.cacheDir, keyParts });
    ttsFallback = fallbackTts(i.tts);
    // A vendor's SDK is loaded now (Cartesia, ElevenLabs), not on the first turn of the call.
    await tts.warm?.().catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'TTS client could not warm up'));
    if (i.llm) {
      // Loaded only when configured; warmed before any call: the library's first answer costs CPU
      // that would otherwise land on the first turn.
      const client = await loadLlm(i.llm, { logger });
      llm = client;
      await client.warm().catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'LLM client could not warm up'));
    }
    // The service's speech-to-text vendor: its SDK is loaded now, not while a caller waits.
    await preloadStt(i, logger);
    // Node's fetch costs ≈ 35–70 ms of CPU on its first request: pay that now, not while a caller is on hold.
    await warmFetch().catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'fetch could not warm up'));
    client = await createCallClient(i, logger);
    // An idle worker whose browser went away is of no use: exit, the pool replaces it.
    client.on('error', (e) => {
      if (e.fatal && !callRunning) void send({ type: 'fatal', error: `call client lost while idle: ${e.message}` }).then(() => exit(1));
    });
    prepared = client.prepare();
    await prepared;
    const failures = Object.keys(failed).length > 0 ? { failed } : {};
    await send({ type: 'ready', pid: process.pid, prepareMs: Date.now() - started, bots, ...failures });
  } catch (err) {
    logger.error({ err }, 'worker failed to initialise');
    await send({ type: 'fatal', error: `worker init failed: ${errorMessage(err)}` });
    await exit(1);
  }
}

async function onStart(call: CallAssignment): Promise<void> {
  if (!init || !client || callRunning) {
    await send({ type: 'fatal', error: callRunning ? 'worker already has a call' : 'start before init' });
    return;
  }
  if (call.warm && warm?.sipEndpoint !== call.warm.sipEndpoint) {
    await send({ type: 'fatal', error: 'warm call for a worker that is not warm on that endpoint' });
    return;
  }
  callRunning = true;
  warm?.release();
  const log = logger.child({ callId: call.callId, id: call.id, bot: call.bot, ...(call.traceId ? { traceId: call.traceId } : {}) });
  const failed = prewarmFailed.get(call.bot);
  const bot = failed ? Promise.reject(failed) : loadBot(init.botsDir, call.bot, init.realtime?.pipeline);
  bot.catch(() => undefined); // handled inside runCall
  currentBotFile = resolveBotFile(init.botsDir, call.bot);
  const { id, callId, callDomain, from, to, bot: botName, roomName, roomUrl } = call;
  current = {
    identity: { id, callId, callDomain, from, to, sipHeaders: {}, bot: botName, roomName, roomUrl },
    receivedAtMs: call.receivedAtMs,
    pid: process.pid,
    orphanedAtMs: 0,
    stages: [],
  };
  const stages = current.stages;
  const forwarded = call.warm?.parentForwards ? new Promise<ForwardResult | undefined>((r) => (parentForward = r)) : undefined;
  const result = await runCall({
    init,
    call,
    client,
    logger: log,
    bot,
    send: (m) => {
      if (m.type === 'stage') stages.push({ stage: m.stage, atMs: m.atMs });
      void send(m);
    },
    hangupSignal: hangup.signal,
    ...(tts ? { tts } : {}),
    ...(ttsFallback ? { ttsFallback } : {}),
    ...(llm ? { llm } : {}),
    hangupDetail: () => escapedError,
    ...(forwarded ? { parentForward: forwarded } : {}),
  });
  await send({
    type: 'done',
    patchbayId: call.id,
    outcome: result.outcome,
    ...(result.detail ? { detail: result.detail } : {}),
    atMs: Date.now(),
  });
  if (orphaned && current && init.orphanDir) {
    const detail = `${result.detail ? `${result.detail}; ` : ''}finished by its worker after the service stopped`;
    writeOrphanEnd(init.orphanDir, { ...current, outcome: result.outcome, detail, endedAtMs: Date.now() });
    log.info({ outcome: result.outcome }, 'orphaned call over: its outcome is left for the restarted service');
  }
  await exit(0);
}

process.on('message', (raw: unknown) => {
  if (!isParentMessage(raw)) return;
  const msg = raw;
  switch (msg.type) {
    case 'init':
      void onInit(msg.init);
      break;
    case 'ping': {
      const m = process.memoryUsage();
      void memoryReport(client).then(
        (extra) => send({ type: 'pong', seq: msg.seq, rssBytes: m.rss, heapUsedBytes: m.heapUsed, ...extra }),
        () => send({ type: 'pong', seq: msg.seq, rssBytes: m.rss, heapUsedBytes: m.heapUsed }),
      );
      break;
    }
    case 'warm':
      void onWarm(msg.room);
      break;
    case 'start':
      void onStart(msg.call);
      break;
    case 'hangup':
      if (callRunning) hangup.abort(msg.reason satisfies Outcome);
      else void exit(0);
      break;
    case 'shutdown':
      if (!callRunning) void exit(0);
      else hangup.abort('shutdown');
      break;
    case 'rate-grant':
      onRateGrant(msg);
      break;
    case 'forward-result':
      if (current?.identity.id === msg.patchbayId) parentForward?.(msg.result);
      break;
  }
});

// The service is gone. Idle: exit. With a call: the caller is not cut off — the call goes on to
// its end (the bot keeps talking; Daily requests no longer wait for rate grants; MAX_CALL_MS still
// bounds it), and its outcome is left in the data directory for the restarted service.
process.on('disconnect', () => {
  releaseGrants();
  parentForward?.(undefined);
  if (!callRunning) return void exit(0);
  if (orphaned || !current) return;
  orphaned = true;
  current.orphanedAtMs = Date.now();
  logger.warn(
    { callId: current.identity.callId, id: current.identity.id },
    'the service stopped: this worker finishes its call on its own',
  );
  if (init?.orphanDir) writeOrphanLive(init.orphanDir, current);
});

process.on('SIGTERM', () => {
  if (callRunning) hangup.abort('shutdown');
  else void exit(0);
});
process.on('SIGINT', () => {
  // The dispatcher decides when we stop; a terminal Ctrl-C reaches the whole group.
});

async function onWarm(room: WarmRoom): Promise<void> {
  if (!init || !client || callRunning || warm) {
    await send({ type: 'fatal', error: callRunning || warm ? 'worker already has a call or a warm room' : 'warm before init' });
    return;
  }
  const i = init;
  warm = await warmUp({
    init: i,
    room,
    client,
    logger: logger.child({ room: room.roomName }),
    ...(tts ? { tts } : {}),
    lost: (reason) => {
      if (callRunning || exiting) return;
      void send({ type: 'warm-lost', reason, atMs: Date.now() }).then(() => exit(0));
    },
  });
  if (warm.sipEndpoint && !callRunning) await send({ type: 'warm-ready', sipEndpoint: warm.sipEndpoint, atMs: Date.now() });
}

async function prewarm(name: string, loaded: LoadedBot): Promise<void> {
  try {
    await loaded.bot.prewarm!();
  } catch (err) {
    const at = botFrame(err, loaded.file);
    const message = `bot "${name}" prewarm() failed in ${loaded.file}: ${errorMessage(err)}${at ? ` (${at})` : ''}`;
    logger.error({ bot: name, botFile: loaded.file, at, err }, 'bot prewarm failed');
    prewarmFailed.set(name, new BotLoadError(message, loaded.file, err));
  }
}

/** Where in the bot's file an escaped error came from, for the log line. */
function botContext(err: unknown): Record<string, unknown> {
  if (!currentBotFile) return {};
  const at = botFrame(err, currentBotFile);
  return { botFile: currentBotFile, ...(at ? { at } : {}) };
}

process.on('uncaughtException', (err) => {
  const ctx = botContext(err);
  logger.error({ err, ...ctx }, 'uncaught exception in worker');
  escapedError ??= `uncaught: ${err?.message ?? String(err)}${ctx.at ? ` (${String(ctx.at)})` : ''}`;
  if (callRunning) hangup.abort('bot_error');
  else void send({ type: 'fatal', error: String(err) }).then(() => exit(1));
});
process.on('unhandledRejection', (err) => {
  const ctx = botContext(err);
  logger.error({ err, ...ctx }, 'unhandled rejection in worker');
  escapedError ??= `unhandled rejection: ${errorMessage(err)}${ctx.at ? ` (${String(ctx.at)})` : ''}`;
  if (callRunning) hangup.abort('bot_error');
});
