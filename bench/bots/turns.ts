// Bench bot: a conversation of N turns. mode 'stream' speaks the LLM's tokens as they arrive
// (call.say(call.llm.stream(...))); mode 'whole' waits for the whole answer, then speaks it.
import { defineBot, type ChatMessage } from '../../src/sdk/index.js';

export default defineBot({
  name: 'turns',
  transcription: true,
  async onCall(call) {
    const stream = call.config.mode !== 'whole';
    const turns = Number(call.config.turns ?? 10);
    const history: ChatMessage[] = [];
    await call.say('ready');
    for (let i = 0; i < turns; i++) {
      const heard = await call.listen({ timeoutMs: 15_000 });
      if (heard === null) break;
      history.push({ role: 'user', content: heard });
      if (stream) {
        const s = call.llm!.stream(history.slice(-6), { signal: call.signal });
        await call.say(s, { interruptible: true });
        history.push({ role: 'assistant', content: await s.text });
      } else {
        const text = await call.llm!.chat(history.slice(-6), { signal: call.signal });
        await call.say(text, { interruptible: true });
        history.push({ role: 'assistant', content: text });
      }
    }
    await call.hangup('bench over');
  },
});
