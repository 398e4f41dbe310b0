/**
 * The voice assistant as one speech-to-speech model (issue 23): OpenAI's Realtime API hears the
 * caller and answers with its own voice, with the same tools as bots/voice-assistant.ts (opening
 * hours; hand-over to a person, the built-in `transfer`) and `hangup` when the caller is done.
 * The caller can talk over it (the model's VAD; what they did not hear is cut from its memory).
 *
 * Needs OPENAI_API_KEY (OPENAI_REALTIME_BASE_URL for a proxy or a stand-in). Routing config:
 * `agentUri` (SIP URI or phone number of the human queue; no hand-over without it).
 */
import { defineBot, openaiRealtime, type Call } from 'patchbay/sdk';
import { openingHours } from './voice-assistant.js';

const INSTRUCTIONS =
  'You are a friendly phone assistant for patchbay. Answer in one or two short spoken sentences. ' +
  'Use opening_hours for opening hours, transfer when the caller asks for a person, and hangup once they say goodbye.';

export default defineBot({
  name: 'realtime-assistant',
  maxCallMs: 10 * 60_000,
  realtime: openaiRealtime<Call>({
    model: 'gpt-realtime',
    voice: 'marin',
    instructions: INSTRUCTIONS,
    greeting: 'Greet the caller: say you are the patchbay assistant and ask how you can help.',
    transferTo: (call) => {
      const agent = call.config.agentUri;
      if (typeof agent !== 'string') return undefined;
      return agent.startsWith('sip:') ? { sipUri: agent } : { phoneNumber: agent };
    },
    tools: [
      {
        name: 'opening_hours',
        description: 'Opening hours of the shop, for one day of the week or for all days.',
        parameters: { type: 'object', properties: { day: { type: 'string', description: 'monday … sunday; omit for all' } } },
        run: (args) => openingHours(typeof args.day === 'string' ? args.day : undefined),
      },
    ],
  }),
});
