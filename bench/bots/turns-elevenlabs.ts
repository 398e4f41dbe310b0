// Bench bot (bench/turns.ts): the cascade pipeline speaking through elevenlabs.
import { elevenlabs } from '../../src/sdk/index.js';
import { cascadeBot } from './turns-lib.js';

export default cascadeBot('turns-elevenlabs', elevenlabs());
