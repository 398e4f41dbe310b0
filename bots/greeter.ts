/** Greets the caller with the number they called, then hangs up. */
import { defineBot, spellOut } from 'patchbay/sdk';

export default defineBot({
  name: 'greeter',
  maxCallMs: 60_000,
  async onCall(call) {
    call.step('greeting');
    await call.say(`Hello! You called ${spellOut(call.to)}.`);
    await call.say('Goodbye.');
    await call.hangup('greeted');
  },
});
