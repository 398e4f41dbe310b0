// Bench bot (bench/turns.ts): speech-to-speech on Gemini Live (its stand-in); the model greets first.
import { defineBot, geminiLive } from '../../src/sdk/index.js';

export default defineBot({ name: 'turns-gemini-live', realtime: geminiLive({ greeting: true }) });
