/** Benchmark bot: a declared greeting (synthesized ahead on a warm slot), then holds until the caller hangs up. */
import { defineBot } from '../../src/sdk/index.js';

export default defineBot({
  name: 'greet',
  greeting: 'Hello, you reached patchbay.',
  async onCall(call) {
    const digits = await call.collectDigits({ maxDigits: 1, firstDigitTimeoutMs: 1_800_000 });
    await call.hangup(`caller pressed ${digits}`);
  },
});
