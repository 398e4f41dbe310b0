// Bench bot (bench/turns.ts): speech-to-speech on OpenAI's Realtime API (its stand-in); the model greets first.
import { defineBot, openaiRealtime } from '../../src/sdk/index.js';

export default defineBot({ name: 'turns-openai-realtime', realtime: openaiRealtime({ greeting: true }) });
