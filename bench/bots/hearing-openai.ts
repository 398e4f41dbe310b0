// Bench bot (bench/hearing-latency.ts): hears through OpenAI transcription (gpt-4o-transcribe, an utterance per request); says when each final reached it.
import { openai } from '../../src/sdk/index.js';
import { hearingBot } from '../lib/hearing-bot.js';

export default hearingBot('hearing-openai', openai({ language: 'en' }));
