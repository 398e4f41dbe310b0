/**
 * The built-in callback offer (CALLBACK_OFFER=true, docs/outbound.md "Callbacks"): a caller who
 * cannot be served within the hold budget is offered a callback instead of a refusal. Light on
 * purpose (espeak-ng prompts and keys only: no STT, no LLM), so it runs beside full bot slots like
 * the apology bot. The caller confirms their own number with 1 (or 2 to key another), or keys one
 * in when theirs is withheld; the number goes to the parent as a `callback` bot event, and the
 * parent stores the callback (src/admission/callback-offer.ts).
 */
import { callbackNumberOf, keyedNumber } from '../../core/callback.js';
import { defineBot, spellOut, type Call } from '../../sdk/index.js';
import type { ChildMessage } from '../protocol.js';

export const OFFER_BUSY = 'All our agents are busy.';
export const OFFER_OWN = 'Press 1 to be called back on the number you are calling from, ending in';
export const OFFER_KEY_IN = 'Please key in the number to call you back on, with its country code, then press hash.';
export const OFFER_BOOKED = 'Thank you. We will call you back as soon as we can. Goodbye.';
export const OFFER_NONE = 'No callback was booked. Please call again later. Goodbye.';

/**
 * The request, to the parent at once (a `callback` bot event on the worker's channel, in order with
 * its other messages): stored even if the caller hangs up during the goodbye.
 */
function request(call: Call, number: string): void {
  const m: ChildMessage = { type: 'bot', patchbayId: call.id, kind: 'callback', value: number, atMs: Date.now() };
  if (process.send && process.connected) process.send(m);
}

/** Up to two tries at keying a number in; undefined when none was valid. */
async function keyIn(call: Call): Promise<string | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    await call.say(attempt === 0 ? OFFER_KEY_IN : 'That is not a phone number. ' + OFFER_KEY_IN, { interruptible: true });
    const keys = await call.collectDigits({ maxDigits: 16, terminator: '#', firstDigitTimeoutMs: 10_000, interDigitTimeoutMs: 5_000 });
    const n = keyedNumber(keys);
    if (n) return n;
  }
  return undefined;
}

export default defineBot({
  name: 'patchbay-callback-offer',
  async onCall(call) {
    const own = callbackNumberOf(call.from);
    let number: string | undefined;
    if (own) {
      await call.say(`${OFFER_BUSY} ${OFFER_OWN} ${spellOut(own.slice(-4))}. Press 2 to key in another number.`, { interruptible: true });
      const key = await call.collectDigits({ maxDigits: 1, firstDigitTimeoutMs: 8_000 });
      if (key === '1') number = own;
      else if (key === '2') number = await keyIn(call);
    } else {
      await call.say(OFFER_BUSY, { interruptible: true });
      number = await keyIn(call);
    }
    if (!number) {
      await call.say(OFFER_NONE);
      return call.hangup('callback offer declined');
    }
    request(call, number);
    await call.say(OFFER_BOOKED);
    return call.hangup('callback requested');
  },
});
