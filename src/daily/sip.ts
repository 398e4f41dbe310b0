/**
 * Caller and SIP URI vocabulary shared by the webhook route, the room service and the worker.
 *
 * The `sip:` scheme (docs/operations.md, "SIP URIs"): Daily returns a room's `config.sip_uri.endpoint`
 * WITH its scheme (`sip:123@x.sip.daily.co`) and its `dialin-ready` event carries the same string;
 * pinlessCallUpdate's `sipUri` is that URI. Some clients prepend another `sip:`, which Daily does
 * not match. patchbay accepts both `sip:x@y` and `x@y` wherever a URI comes in and always sends
 * exactly one scheme (`sips:` and `tel:` are left as they are).
 */

/** `x@y`, `sip:x@y`, `sip:sip:x@y`, ` SIP:x@y ` → `sip:x@y`; `sips:`/`tel:` URIs unchanged. */
export function normalizeSipUri(uri: string): string {
  let s = uri.trim();
  if (/^(sips|tel):/i.test(s)) return s;
  while (/^sip:/i.test(s)) s = s.slice(4).trimStart();
  return `sip:${s}`;
}

/** What patchbay puts in `from` for a caller whose number is withheld (docs/bots.md). */
export const WITHHELD_CALLER = 'withheld';
/** The room's `sip.display_name` for such a caller. */
export const WITHHELD_DISPLAY_NAME = 'Withheld';

/**
 * User parts that mean "no caller ID": RFC 3261/3323's `anonymous` (`sip:anonymous@anonymous.invalid`),
 * and what carriers put for a withheld/private/unknown number.
 */
const WITHHELD_USERS = new Set(['anonymous', 'restricted', 'private', 'withheld', 'unavailable', 'unknown', 'blocked']);

/**
 * A `From` that carries no caller ID: missing, null, blank, `anonymous` (any case), `restricted`, …, or a
 * SIP/tel URI (optionally `"Name" <sip:…>`) whose user part is one of those.
 */
export function isWithheldCaller(from: string | undefined | null): boolean {
  if (typeof from !== 'string') return true;
  let s = from.trim();
  if (s.length === 0) return true;
  const angle = /<([^>]*)>/.exec(s);
  if (angle) s = angle[1]!.trim();
  s = s.replace(/^(sips?|tel):/i, '');
  const user = (s.split('@')[0] ?? '').split(/[;?]/)[0]!.trim().replace(/^\+/, '').toLowerCase();
  return user.length === 0 || WITHHELD_USERS.has(user);
}

/**
 * The longest display name patchbay gives a room. Daily documents no limit for `sip.display_name`;
 * we keep it short because the name shows as the SIP participant's user name (and a `From` can
 * carry a long SIP URI). Chosen, not documented by Daily: see docs/operations.md.
 */
export const MAX_DISPLAY_NAME_CHARS = 64;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators. */
const CONTROL = /[\p{Cc}\u2028\u2029]+/gu;

/**
 * Text from a caller's `From` made safe to carry on: well-formed UTF-16 (a lone surrogate → U+FFFD,
 * so `encodeURIComponent` and every encoder accept it) and no control characters (CR/LF and the
 * rest → one space, so nothing can start a new header or log line), trimmed.
 */
export function cleanCallerText(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD').replace(CONTROL, ' ').trim();
}

/** The room's display name for a caller: "Withheld", or the caller (cleaned) shortened to `MAX_DISPLAY_NAME_CHARS`. */
export function callerDisplayName(from: string): string {
  if (isWithheldCaller(from)) return WITHHELD_DISPLAY_NAME; // `withheld` itself included
  const clean = cleanCallerText(from);
  if (clean.length === 0) return WITHHELD_DISPLAY_NAME;
  const chars = [...clean];
  return chars.length <= MAX_DISPLAY_NAME_CHARS ? chars.join('') : `${chars.slice(0, MAX_DISPLAY_NAME_CHARS - 1).join('')}…`;
}

/** The SIP URI with the caller's display name as Daily reads it (`?x-daily_display_name=`, URL-encoded). */
export function withDisplayName(sipUri: string, from: string): string {
  return `${sipUri}${sipUri.includes('?') ? '&' : '?'}x-daily_display_name=${encodeURIComponent(callerDisplayName(from))}`;
}
