/**
 * The voice assistant as one speech-to-speech model (issue 23): OpenAI's Realtime API hears the
 * caller and answers with its own voice, with the same tools as bots/voice-assistant.ts (opening
 * hours; hand-over to a person, the built-in `transfer`) and `hangup` when the caller is done.
 * The caller can talk over it (the model's VAD; what they did not hear is cut from its memory).
 * It always runs speech-to-speech; bots/voice-assistant.ts runs this same model when the service
 * says VOICE_PIPELINE=openai-realtime (or gemini-live), and its cascade otherwise.
 *
 * Needs OPENAI_API_KEY (OPENAI_REALTIME_BASE_URL for a proxy or a stand-in). Routing config:
 * `agentUri` (SIP URI or phone number of the human queue; no hand-over without it).
 */
import { defineBot, openaiRealtime, type Call } from 'patchbay/sdk';
import { REALTIME } from './voice-assistant.js';

export default defineBot({
  name: 'realtime-assistant',
  maxCallMs: 10 * 60_000,
  realtime: openaiRealtime<Call>({ model: 'gpt-realtime', voice: 'marin', ...REALTIME }),
});
