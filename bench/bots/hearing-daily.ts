// Bench bot (bench/hearing-latency.ts): hears through Daily's transcription; says when each final reached it.
import { dailyTranscription } from '../../src/sdk/index.js';
import { hearingBot } from '../lib/hearing-bot.js';

export default hearingBot('hearing-daily', dailyTranscription());
