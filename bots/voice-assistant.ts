/**
 * A conversational phone assistant. With an LLM (OPENAI_API_KEY; any OpenAI-compatible endpoint,
 * LLM_BASE_URL) it streams: the answer is spoken sentence by sentence as the model writes it, the
 * model can call tools (opening hours, hand over to a human), and the caller can talk over it
 * (barge-in on their voice, `turnDetection`). Without a key it answers with deterministic rules,
 * so it runs offline. Says goodbye on "bye" or after two silences.
 *
 * Its pipeline comes from the environment. VOICE_PIPELINE=cascade (the default): who hears the
 * caller (STT_PROVIDER), thinks (LLM_PROVIDER) and speaks (TTS_PROVIDER), as above.
 * VOICE_PIPELINE=openai-realtime or gemini-live: one speech-to-speech model does all three
 * (`realtime` below, shared with bots/realtime-assistant.ts): same tools, same `agentUri` (a
 * plain transfer there; the model hangs up when the caller says goodbye).
 *
 * Routing config: `agentUri` (SIP URI or phone number of the human queue; no handover without it),
 * `handover` (`warm`, the default: the agent is briefed first and the caller stays with the bot when
 * nobody answers — needs DAILY_DIALOUT; `blind`: a plain transfer), `listenTimeoutMs`.
 */
import { defineBot, openaiRealtime, type Call, type ChatMessage, type RealtimeOptions, type ToolCall, type ToolSpec } from 'patchbay/sdk';

const SYSTEM =
  'You are a friendly phone assistant for patchbay. Answer in one or two short spoken sentences, no markup. ' +
  'Use the tools for opening hours and to hand the caller to a human when they ask for one.';

const HOURS: Record<string, string> = {
  monday: '9:00–17:00',
  tuesday: '9:00–17:00',
  wednesday: '9:00–17:00',
  thursday: '9:00–17:00',
  friday: '9:00–17:00',
  saturday: 'closed',
  sunday: 'closed',
};

/** The opening-hours tool, as both pipelines offer it to their model. */
const HOURS_TOOL = {
  name: 'opening_hours',
  description: 'Opening hours of the shop, for one day of the week or for all days.',
  parameters: { type: 'object', properties: { day: { type: 'string', description: 'monday … sunday; omit for all' } } },
} as const;

export const TOOLS: ToolSpec[] = [
  HOURS_TOOL,
  {
    name: 'transfer_to_human',
    description: 'Hand the caller over to a human agent, when they ask for a person.',
    parameters: { type: 'object', properties: { reason: { type: 'string' } } },
  },
];

/** The offline brain: keyword rules, deterministic. */
export function ruleReply(text: string): string {
  const t = text.toLowerCase();
  if (/\b(bill|billing|invoice|payment)\b/.test(t)) return 'For billing, your latest invoice is in your account under Billing.';
  if (/\b(hours|open|opening|close)\b/.test(t)) return 'We are open Monday to Friday, nine to five.';
  if (/\b(human|agent|person|operator)\b/.test(t)) return 'Please call back during opening hours to reach an agent.';
  if (/\b(hello|hi|hey)\b/.test(t)) return 'Hello! Ask me about billing or opening hours.';
  return `You said: ${text}. I can help with billing or opening hours.`;
}

const wantsHuman = (text: string) => /\b(human|agent|person|operator)\b/i.test(text);

/** The opening hours for one day (or all days), as the model is told them. Shared with bots/realtime-assistant.ts. */
export function openingHours(day: string | undefined): string {
  const d = day?.toLowerCase();
  return JSON.stringify(d && HOURS[d] ? { [d]: HOURS[d] } : HOURS);
}

/** Where a hand-over goes: `agentUri` from the routing config (none without it). */
function agentOf(call: Call): { sipUri: string } | { phoneNumber: string } | undefined {
  const agent = call.config.agentUri;
  if (typeof agent !== 'string') return undefined;
  return agent.startsWith('sip:') ? { sipUri: agent } : { phoneNumber: agent };
}

/**
 * The assistant as one speech-to-speech model (VOICE_PIPELINE=openai-realtime or gemini-live here;
 * always in bots/realtime-assistant.ts): the same tools, the built-in `transfer` to `agentUri`.
 */
export const REALTIME: RealtimeOptions<Call> = {
  instructions:
    'You are a friendly phone assistant for patchbay. Answer in one or two short spoken sentences. ' +
    'Use opening_hours for opening hours, transfer when the caller asks for a person, and hangup once they say goodbye.',
  greeting: 'Greet the caller: say you are the patchbay assistant and ask how you can help.',
  transferTo: agentOf,
  tools: [{ ...HOURS_TOOL, run: (args) => openingHours(typeof args.day === 'string' ? args.day : undefined) }],
};

function runTool(c: ToolCall): string {
  if (c.function.name !== 'opening_hours') return JSON.stringify({ error: `unknown tool ${c.function.name}` });
  try {
    return openingHours((JSON.parse(c.function.arguments || '{}') as { day?: string }).day);
  } catch {
    return JSON.stringify({ error: 'arguments are not JSON' });
  }
}

/**
 * One answer from the LLM, spoken as it streams; tool calls are run and the model asked again.
 * Returns 'handover' when the model decided to hand the caller to a human.
 */
async function answerWithLlm(call: Call, history: ChatMessage[]): Promise<'answered' | 'handover'> {
  for (let round = 0; round < 3; round++) {
    const stream = call.llm!.stream([{ role: 'system', content: SYSTEM }, ...history.slice(-12)], {
      signal: call.signal,
      maxTokens: 150,
      tools: TOOLS,
    });
    const spoken = await call.say(stream, { interruptible: true }); // the caller may talk over a long answer
    const [text, calls] = await Promise.all([stream.text, stream.toolCalls]);
    if (calls.length === 0) {
      // What the caller heard: cut at the last word played when they talked over it (nothing, when
      // they spoke before the first word: no empty message, which some vendors refuse).
      const heard = spoken.interrupted ? spoken.text : text;
      if (heard) history.push({ role: 'assistant', content: heard });
      return 'answered';
    }
    history.push({ role: 'assistant', content: text, tool_calls: calls });
    if (calls.some((c) => c.function.name === 'transfer_to_human')) return 'handover';
    for (const c of calls) history.push({ role: 'tool', tool_call_id: c.id, content: runTool(c) });
  }
  return 'answered';
}

/** What the human hears before the caller is put through: who calls and what they said so far. */
function briefing(call: Call, history: ChatMessage[]): string {
  const said = history
    .filter((m) => m.role === 'user')
    .slice(-3)
    .map((m) => m.content);
  return `A caller${call.from === 'withheld' ? ' with a withheld number' : ''} asked for a person. They said: ${said.join(' … ') || 'nothing yet'}.`;
}

/**
 * Hands the caller to a human: a warm transfer by default (the agent is briefed first; if nobody
 * answers, the caller stays with the bot), or a blind one with `config.handover: 'blind'`.
 * Returns true when the caller is gone to the human.
 */
async function handOver(call: Call, history: ChatMessage[]): Promise<boolean> {
  call.step('handover');
  const to = agentOf(call);
  if (!to) {
    await call.say('I am sorry, nobody can take your call right now. Please call back during opening hours.');
    return false;
  }
  if (call.config.handover === 'blind') {
    await call.say('Let me put you through to a colleague.');
    await call.transfer(to);
    return true;
  }
  const r = await call.warmTransfer({
    to,
    brief: briefing(call, history),
    holdMessage: 'Let me put you through to a colleague. Please hold.',
    apology: 'I am sorry, my colleagues are all busy right now. I can keep helping you.',
  });
  return r.result === 'bridged';
}

export default defineBot({
  name: 'voice-assistant',
  transcription: true,
  turnDetection: true,
  maxCallMs: 10 * 60_000,
  // Speech-to-speech, when the service says so (VOICE_PIPELINE); `onCall` below otherwise.
  realtime: openaiRealtime<Call>({ model: 'gpt-realtime', voice: 'marin', ...REALTIME }),
  async onCall(call) {
    const listenTimeoutMs = Number(call.config.listenTimeoutMs ?? 8_000);
    const history: ChatMessage[] = [];
    await call.say('Hi, this is the patchbay assistant. How can I help?');
    let silences = 0;
    for (let turn = 0; turn < 20; turn++) {
      const text = await call.listen({ timeoutMs: listenTimeoutMs, step: 'conversation' });
      if (text === null) {
        if (++silences >= 2) break;
        await call.say('Are you still there?');
        continue;
      }
      silences = 0;
      if (/\b(bye|goodbye|that's all)\b/i.test(text)) break;
      history.push({ role: 'user', content: text });
      let handover = false;
      if (call.llm) {
        try {
          handover = (await answerWithLlm(call, history)) === 'handover';
        } catch (err) {
          if (call.signal.aborted) throw err;
          call.logger.warn({ err: (err as Error).message }, 'LLM failed; answering with rules');
          await call.say(ruleReply(text), { interruptible: true });
        }
      } else if (wantsHuman(text) && typeof call.config.agentUri === 'string') {
        handover = true;
      } else {
        await call.say(ruleReply(text), { interruptible: true });
      }
      if (handover && (await handOver(call, history))) return;
    }
    call.step('goodbye');
    await call.say('Goodbye!');
    await call.hangup('conversation over');
  },
});
