// Bench bot (bench/turns.ts): the cascade pipeline speaking through cartesia.
import { cartesia } from '../../src/sdk/index.js';
import { cascadeBot } from './turns-lib.js';

export default cascadeBot('turns-cartesia', cartesia());
