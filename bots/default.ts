/**
 * The minimal default bot: greets the caller, echoes the digits they press, and hangs up when
 * they press # or stay silent.
 */
import { defineBot } from 'patchbay/sdk';

export default defineBot({
  name: 'default',
  async onCall(call) {
    await call.say(`Hello! You reached patchbay at ${call.to}. Press some digits, then the pound key.`);
    for (let round = 0; round < 3; round++) {
      const digits = await call.collectDigits({ maxDigits: 16, terminator: '#', firstDigitTimeoutMs: 8_000, interDigitTimeoutMs: 3_000 });
      if (!digits) break;
      await call.say(`You pressed ${digits.split('').join(' ')}.`);
    }
    await call.say('Goodbye.');
    await call.hangup('default bot finished');
  },
});
