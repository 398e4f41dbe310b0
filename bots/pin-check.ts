/**
 * Collects a PIN ended by # and branches: accepted → welcome, wrong → retry, three wrong or no
 * input → goodbye. The PIN comes from the routing file (`pin`), "1234" by default.
 * Steps (funnels): pin → pin-retry (after a wrong PIN) → welcome-back.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { defineBot } from 'patchbay/sdk';

const digest = (s: string) => createHash('sha256').update(s).digest();
const samePin = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

export default defineBot({
  name: 'pin-check',
  maxCallMs: 3 * 60_000,
  async onCall(call) {
    const pin = String(call.config.pin ?? '1234');
    const firstDigitTimeoutMs = Number(call.config.digitTimeoutMs ?? 8_000);
    call.step('pin');
    await call.say('Please enter your PIN, then press pound.', { interruptible: true });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const entered = await call.collectDigits({
        maxDigits: 12,
        terminator: '#',
        firstDigitTimeoutMs,
        interDigitTimeoutMs: 4_000,
        ...(attempt > 1 ? { step: 'pin-retry' } : {}),
      });
      if (!entered) {
        await call.say("I didn't get a PIN. Goodbye.");
        await call.hangup('no pin');
        return;
      }
      if (samePin(entered, pin)) {
        call.logger.info({ attempt }, 'PIN accepted');
        call.step('welcome-back');
        await call.say('PIN accepted. Welcome back!');
        await call.hangup('pin accepted');
        return;
      }
      call.logger.info({ attempt }, 'wrong PIN');
      if (attempt < 3) await call.say('That PIN is not correct. Please try again.');
    }
    await call.say('Too many attempts. Goodbye.');
    await call.hangup('pin rejected');
  },
});
