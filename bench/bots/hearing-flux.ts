// Bench bot (bench/hearing-latency.ts): hears through flux; says when each final reached it.
import { deepgram } from '../../src/sdk/index.js';
import { hearingBot } from '../lib/hearing-bot.js';

export default hearingBot('hearing-flux', deepgram({ model: 'flux-general-en' }));
