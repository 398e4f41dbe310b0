// Bench bot (bench/hearing-latency.ts): hears through assemblyai; says when each final reached it.
import { assemblyai } from '../../src/sdk/index.js';
import { hearingBot } from '../lib/hearing-bot.js';

export default hearingBot('hearing-assemblyai', assemblyai({ language: 'en' }));
