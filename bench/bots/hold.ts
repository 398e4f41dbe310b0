/** Benchmark bot: says one word, then stays on the call until the caller presses a key or hangs up. */
import { defineBot } from '../../src/sdk/index.js';

export default defineBot({
  name: 'hold',
  async onCall(call) {
    await call.say('hi');
    const digits = await call.collectDigits({ maxDigits: 1, firstDigitTimeoutMs: 1_800_000 });
    await call.hangup(`caller pressed ${digits}`);
  },
});
