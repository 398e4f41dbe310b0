/**
 * The built-in last resort (src/workers/parent/fallback.ts): when a call cannot be served and no
 * FALLBACK_SIP_URI is set, a fresh worker runs this bot so the caller is told, not left on hold.
 */
import { defineBot } from '../../sdk/index.js';

export const APOLOGY_TEXT = 'We are sorry, we cannot take your call right now. Please call again later. Goodbye.';

export default defineBot({
  name: 'patchbay-apology',
  async onCall(call) {
    await call.say(APOLOGY_TEXT);
    await call.hangup('apologised: the call could not be served');
  },
});
