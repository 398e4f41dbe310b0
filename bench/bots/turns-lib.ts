// Bench bots of bench/turns.ts: one cascade conversation (Daily's transcript → the LLM streamed →
// the bot's TTS), one bot per TTS vendor (`tts:` chosen per bot), so one service runs them all.
import { defineBot, type Bot, type ChatMessage, type TtsChoice } from '../../src/sdk/index.js';

export function cascadeBot(name: string, tts: TtsChoice): Bot {
  return defineBot({
    name,
    transcription: true,
    tts,
    async onCall(call) {
      const turns = Number(call.config.turns ?? 8);
      const history: ChatMessage[] = [];
      await call.say('ready');
      for (let i = 0; i < turns; i++) {
        const heard = await call.listen({ timeoutMs: 20_000 });
        if (heard === null) break;
        history.push({ role: 'user', content: heard });
        const s = call.llm!.stream(history.slice(-6), { signal: call.signal });
        const spoken = await call.say(s, { interruptible: true });
        history.push({ role: 'assistant', content: spoken.text });
      }
      await call.hangup('bench over');
    },
  });
}
