// Bench bot (bench/hearing-latency.ts): hears through nova; says when each final reached it.
import { deepgram } from '../../src/sdk/index.js';
import { hearingBot } from '../lib/hearing-bot.js';

export default hearingBot('hearing-nova', deepgram({ model: 'nova-3', language: 'en-US' }));
