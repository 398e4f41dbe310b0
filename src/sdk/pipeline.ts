/**
 * A bot that offers both pipelines (`onCall`, the cascade, and `realtime`, a speech-to-speech
 * model) runs the one the service chose (VOICE_PIPELINE, given to the worker in
 * WorkerInit.realtime.pipeline):
 *
 *   export default defineBot({
 *     name: 'voice-assistant',
 *     transcription: true,
 *     async onCall(call) { … call.listen() … call.llm.stream() … call.say() … },
 *     realtime: openaiRealtime({ voice: 'marin', instructions: '…', tools: [...] }),
 *   });
 *
 * - `cascade` (the default): the bot runs as if it had no `realtime`.
 * - `openai-realtime` / `gemini-live`: as if it had no `onCall`, on that vendor. A model or voice
 *   the bot named for another vendor is left out (each vendor has its own names): the vendor's
 *   default is taken. The cascade's listening (transcription, `stt`, `turnDetection`, `endOfTurn`)
 *   is off: the model hears the caller.
 *
 * A bot with only one of the two runs it whatever the service says.
 */
import type { S2sProviderName } from '../voice/s2s.js';
import type { Bot } from './index.js';

/** The bot as it runs under the service's pipeline (`s2s`: the speech-to-speech vendor; undefined: the cascade). */
export function botForPipeline(bot: Bot, s2s: S2sProviderName | undefined): Bot {
  if (!bot.realtime || typeof bot.onCall !== 'function') return bot;
  // Spreading keeps the bot's brand (an enumerable symbol); the result is frozen like defineBot's.
  if (!s2s) return Object.freeze({ ...bot, realtime: undefined });
  const { model, voice, ...rest } = bot.realtime;
  const same = bot.realtime.provider === s2s;
  return Object.freeze({
    ...bot,
    onCall: undefined,
    transcription: undefined,
    stt: undefined,
    turnDetection: undefined,
    endOfTurn: undefined,
    realtime: { ...rest, provider: s2s, ...(same && model ? { model } : {}), ...(same && voice ? { voice } : {}) },
  });
}
