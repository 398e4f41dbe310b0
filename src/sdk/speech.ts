/** Helpers for text that is meant to be spoken. */

/**
 * Spells a phone number digit by digit so TTS reads "5 5 5 0" rather than "five thousand…":
 * "+1 (555) 000-1000" → "1 5 5 5 0 0 0 1 0 0 0". A SIP URI is reduced to its user part
 * ("sip:+15550001000@host" → digits; "sip:sales@host" → "sales").
 */
export function spellOut(numberOrUri: string): string {
  let v = numberOrUri.trim().replace(/^<|>$/g, '');
  if (/^(sips?|tel):/i.test(v))
    v = v
      .replace(/^(sips?|tel):/i, '')
      .split('@')[0]!
      .split(';')[0]!;
  const digits = v.replace(/[\s().+-]/g, '');
  if (/^[0-9*#]+$/.test(digits)) return digits.split('').join(' ');
  return v;
}
