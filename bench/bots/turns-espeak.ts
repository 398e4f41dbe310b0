// Bench bot (bench/turns.ts): the cascade pipeline speaking through espeak.
import { espeak } from '../../src/sdk/index.js';
import { cascadeBot } from './turns-lib.js';

export default cascadeBot('turns-espeak', espeak());
