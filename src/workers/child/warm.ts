/**
 * A worker becoming a warm slot (before any call): join the slot's room as the bot, wait for
 * `dialin-ready`, synthesize the preloaded bots' greetings into the TTS cache. Until a call takes
 * the slot, the bot leaving the room (room expiry with `eject_at_room_exp`, an eject, a fatal
 * client error) reports the slot lost; the worker then exits and the parent replaces the slot.
 */
import type { Logger } from 'pino';
import type { CallClient } from '../../daily/call-client.js';
import type { WarmRoom, WorkerInit } from '../protocol.js';
import { isCachedTts } from '../../voice/tts-cache.js';
import type { TtsProvider } from '../../voice/tts.js';
import { loadBot } from './bot-loader.js';
import { botTts } from './call-tts.js';
import { greetingFile, loadGreetingAudio } from './greeting.js';
import { errorMessage } from '../../core/errors.js';

export interface WarmState {
  /** The ready endpoint; undefined when warming failed (`lost` was called). */
  sipEndpoint: string | undefined;
  /** A call took the slot: stop watching the room for the slot's sake. */
  release(): void;
}

export async function warmUp(deps: {
  init: WorkerInit;
  room: WarmRoom;
  client: CallClient;
  logger: Logger;
  tts?: TtsProvider;
  lost(reason: string): void;
}): Promise<WarmState> {
  const { init, room, client, logger } = deps;
  const unsubs: Array<() => void> = [];
  let released = false;
  const state: WarmState = {
    sipEndpoint: undefined,
    release() {
      released = true;
      for (const u of unsubs.splice(0)) u();
    },
  };
  const lost = (reason: string) => {
    if (released) return;
    state.release();
    logger.warn({ reason }, 'warm slot lost');
    deps.lost(reason);
  };
  unsubs.push(client.on('left-meeting', ({ reason }) => lost(`left meeting: ${reason}`)));
  unsubs.push(client.on('error', ({ message, fatal }) => fatal && lost(`call client error: ${message}`)));
  let onReady!: (uri: string) => void;
  const ready = new Promise<string>((r) => (onReady = r));
  unsubs.push(client.on('dialin-ready', ({ sipEndpoint }) => onReady(sipEndpoint)));
  const t0 = Date.now();
  try {
    await client.join({ roomUrl: room.roomUrl, token: room.token, userName: 'patchbay-bot', timeoutMs: init.joinTimeoutMs });
    const greetings = preloadGreetings(init, deps.tts, logger);
    const sipEndpoint = await within(ready, init.dialinReadyTimeoutMs, `no dialin-ready within ${init.dialinReadyTimeoutMs} ms`);
    await within(greetings, init.joinTimeoutMs, 'greetings not synthesized in time').catch((err: unknown) =>
      logger.warn({ err: errorMessage(err) }, 'greetings not cached; they are synthesized during the call'),
    );
    if (released) return state;
    state.sipEndpoint = sipEndpoint;
    logger.debug({ warmMs: Date.now() - t0 }, 'warm slot ready');
  } catch (err) {
    lost(`warming failed: ${errorMessage(err)}`);
  }
  return state;
}

/** Speech for the greetings of the bots this worker preloaded (a routed bot loads at `start`). */
async function preloadGreetings(init: WorkerInit, serviceTts: TtsProvider | undefined, logger: Logger): Promise<void> {
  for (const name of init.preloadBots) {
    const loaded = await loadBot(init.botsDir, name, init.realtime?.pipeline).catch(() => undefined);
    const file = loaded ? greetingFile(loaded) : undefined;
    if (file) {
      await loadGreetingAudio(file).catch((err: unknown) =>
        logger.warn({ bot: name, file, err: errorMessage(err) }, 'greeting audio could not be read ahead'),
      );
      continue;
    }
    const text = loaded?.bot.greeting;
    // A bot with its own TTS (`tts: cartesia({...})`) has its greeting said by that one.
    const tts = botTts(init, loaded?.bot.tts, logger) ?? serviceTts;
    if (typeof text !== 'string' || !tts || !isCachedTts(tts) || tts.has(text)) continue;
    await tts
      .preload(text)
      .catch((err: unknown) => logger.warn({ bot: name, err: errorMessage(err) }, 'greeting could not be synthesized ahead'));
  }
}

function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(message)), ms)))]).finally(() =>
    clearTimeout(t),
  );
}
