/**
 * Listens to the caller (Daily transcription) and answers: with an LLM when OPENAI_API_KEY is
 * configured (any OpenAI-compatible endpoint, LLM_BASE_URL), otherwise with deterministic rules,
 * so it runs offline. Says goodbye on "bye" or after two silences.
 */
import { defineBot, type Call, type ChatMessage } from 'patchbay/sdk';

const SYSTEM = 'You are a friendly phone assistant for patchbay. Answer in one or two short spoken sentences, no markup.';

/** The offline brain: keyword rules, deterministic. */
export function ruleReply(text: string): string {
  const t = text.toLowerCase();
  if (/\b(bill|billing|invoice|payment)\b/.test(t)) return 'For billing, your latest invoice is in your account under Billing.';
  if (/\b(hours|open|opening|close)\b/.test(t)) return 'We are open Monday to Friday, nine to five.';
  if (/\b(human|agent|person|operator)\b/.test(t)) return 'Please call back during opening hours to reach an agent.';
  if (/\b(hello|hi|hey)\b/.test(t)) return 'Hello! Ask me about billing or opening hours.';
  return `You said: ${text}. I can help with billing or opening hours.`;
}

async function answer(call: Call, history: ChatMessage[], text: string): Promise<string> {
  if (!call.llm) return ruleReply(text);
  try {
    return await call.llm.chat([{ role: 'system', content: SYSTEM }, ...history.slice(-10)], { signal: call.signal, maxTokens: 120 });
  } catch (err) {
    if (call.signal.aborted) throw err;
    call.logger.warn({ err: (err as Error).message }, 'LLM failed; answering with rules');
    return ruleReply(text);
  }
}

export default defineBot({
  name: 'voice-assistant',
  transcription: true,
  maxCallMs: 10 * 60_000,
  async onCall(call) {
    const listenTimeoutMs = Number(call.config.listenTimeoutMs ?? 8_000);
    const history: ChatMessage[] = [];
    await call.say('Hi, this is the patchbay assistant. How can I help?');
    let silences = 0;
    for (let turn = 0; turn < 20; turn++) {
      const text = await call.listen({ timeoutMs: listenTimeoutMs });
      if (text === null) {
        if (++silences >= 2) break;
        await call.say('Are you still there?');
        continue;
      }
      silences = 0;
      if (/\b(bye|goodbye|that's all)\b/i.test(text)) break;
      history.push({ role: 'user', content: text });
      const reply = await answer(call, history, text);
      history.push({ role: 'assistant', content: reply });
      await call.say(reply, { interruptible: true }); // the caller may talk over a long answer
    }
    await call.say('Goodbye!');
    await call.hangup('conversation over');
  },
});
