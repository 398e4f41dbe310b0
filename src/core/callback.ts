/**
 * Callbacks instead of hold (issue 26, item 2; docs/outbound.md "Callbacks"): the vocabulary the
 * offer bot (workers/child), admission (the store and the scheduler) and the SDK (`call.callback`)
 * share. A number is E.164-ish: a `+`, then 7–15 digits, not starting with 0.
 */

/** The built-in callback offer bot's name (src/workers/child/callback-offer-bot.ts); never a file in the bots directory. */
export const CALLBACK_OFFER_BOT = 'patchbay:callback-offer';

/** What a callback's bot sees as `call.callback`. */
export interface CallbackInfo {
  /** When the caller asked to be called back (ISO 8601). */
  readonly requestedAt: string;
  /** Why the caller could not be served: `overloaded` (past the hold budget) or `queue_full`. */
  readonly reason: string;
  /** patchbay's id of the call that asked (its record in GET /calls). */
  readonly originalCallId: string;
}

const NUMBER = /^\+[1-9]\d{6,14}$/;

export function isCallbackNumber(s: string): boolean {
  return NUMBER.test(s);
}

/**
 * The caller's own number from a `From` (`+15551234567`, `sip:+15551234567@host`, `tel:…`, with
 * spaces, dashes, dots or brackets), or undefined when it is withheld or not a phone number.
 */
export function callbackNumberOf(from: string): string | undefined {
  const user = from
    .trim()
    .replace(/^<|>$/g, '')
    .replace(/^(sips?|tel):/i, '')
    .replace(/[@;].*$/, '')
    .replace(/[\s().-]/g, '');
  return NUMBER.test(user) ? user : undefined;
}

/** Keys typed by a caller (no `+`) → the number they name, or undefined when it is not one. */
export function keyedNumber(keys: string): string | undefined {
  const n = `+${keys.replace(/^(\+|00)/, '')}`;
  return NUMBER.test(n) ? n : undefined;
}
