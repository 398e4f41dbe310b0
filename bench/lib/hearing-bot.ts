/**
 * The hearing-latency bench's bots (bench/bots/hearing-*.ts): each hears the caller through one
 * speech-to-text provider and, the moment a final transcript reaches the bot (`onTranscript`),
 * says when it got it: `heard <Date.now()>: <text>`. The caller's transcript carries it back to the
 * bench (the text TTS makes no audio, so saying it costs the measured path nothing).
 */
import { defineBot, type Bot, type SttChoice } from '../../src/sdk/index.js';

export const HEARD = /^heard (\d+): (.*)$/;

export function hearingBot(name: string, stt: SttChoice): Bot {
  return defineBot({
    name,
    stt,
    transcription: true,
    async onCall(call) {
      await call.say('ready');
      while ((await call.listen({ timeoutMs: 30_000 })) !== null);
      await call.hangup('bench over');
    },
    onTranscript(call, text) {
      const at = Date.now();
      void call.say(`heard ${at}: ${text}`);
    },
  });
}
