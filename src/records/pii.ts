/**
 * What a record keeps when CALL_RECORDS_STORE_PII is false (the default):
 *
 * - caller/callee numbers and transfer targets: masked, last 4 digits kept (`maskNumber`);
 * - DTMF digits and caller transcripts: not stored (`[not stored]`);
 * - step names (`call.step()`): kept as they are (the bot's own names, and the funnels' keys);
 * - the bot's prompts and any other free text (detail, Daily's error messages): E.164 numbers are
 *   masked like numbers, and every run of two or more keys (digits, `*`, `#`) has each key
 *   replaced by `•`, so "You pressed 4 * 1 * 1 #" becomes "You pressed • • • • • •". Keys separated
 *   only by spaces, commas, dots, dashes or slashes are one run, so keys read back stay unreadable
 *   however they are spelled out ("4-1-1-1", "41 11", "4*1*1*1#", "4,1,1,1"). A lone key between
 *   words ("Press 1 for sales", "press # to finish") is kept: menu prompts stay readable, and one
 *   key says nothing about the caller.
 */
import { maskNumber } from '../core/logger.js';
import type { RecordEvent } from './types.js';
import { TURN_EVENT, TURN_EVENT_KIND } from '../core/turn-timing.js';

export const NOT_STORED = '[not stored]';
/** A key of a phone keypad as read back in text: any decimal digit, `*` or `#`. */
const KEY = /[\p{Nd}*#]/gu;
/** Two or more keys with nothing but separators between them. */
export const KEY_RUN = /[\p{Nd}*#](?:[\s,.\-/]*[\p{Nd}*#])+/gu;
const E164 = /\+\p{Nd}{7,15}/gu;

/** Each key of every run of two or more keys (digits, `*`, `#`) in `text` → `•`. */
export function maskDigits(text: string): string {
  return text.replace(KEY_RUN, (run) => run.replace(KEY, '•'));
}

/** Numbers in free text (detail, error messages) → masked, other digit runs → `•`. */
export function maskFreeText(text: string): string {
  // Mask E.164 numbers keeping their last 4 (for correlation), then every other digit.
  const parts: string[] = [];
  let last = 0;
  for (const m of text.matchAll(E164)) {
    parts.push(maskDigits(text.slice(last, m.index)), maskNumber(m[0])!);
    last = m.index + m[0].length;
  }
  parts.push(maskDigits(text.slice(last)));
  return parts.join('');
}

const CALLER_INPUT = new Set(['digits', 'transcript']);
const RECORDING_ID = /^(id|started) [\w.-]{1,128}$/;
const NUMBER_VALUES = new Set(['transfer']);

/** One event as stored without PII. */
export function maskEvent(e: RecordEvent): RecordEvent {
  // A step name is the bot's own vocabulary (src/core/timeline.ts STEP_NAME), never caller data.
  if (e.kind === 'step') return e;
  if (CALLER_INPUT.has(e.kind)) return { ...e, value: NOT_STORED };
  // A recording's id (Daily's, or the local file's name) is no one's data, and is needed to find it.
  if (e.kind === 'recording' && RECORDING_ID.test(e.value)) return e;
  // A turn's stage times (src/core/turn-timing.ts): numbers of ours, nobody's data.
  if (e.kind === TURN_EVENT_KIND && TURN_EVENT.test(e.value)) return e;
  if (NUMBER_VALUES.has(e.kind)) return { ...e, value: maskTarget(e.value) };
  return { ...e, value: maskFreeText(e.value) };
}

/** A transfer target: a number or SIP URI → last 4 digits of its user part kept. */
function maskTarget(v: string): string {
  const masked = maskNumber(v) ?? '';
  // A URI with digits elsewhere (host, parameters) keeps none of them readable but the last 4 of the user.
  const at = masked.indexOf('@');
  return at < 0 ? masked : masked.slice(0, at) + maskDigits(masked.slice(at));
}

/** Digits of a number, as stored for the "last digits" search: all of them, or the last 4 when masked. */
export function searchDigits(number: string, storePii: boolean): string {
  const user = /^(?:sips?:)?([^@;]*)/.exec(number)?.[1] ?? number;
  const digits = user.replace(/\D/g, '');
  return storePii ? digits : digits.slice(-4);
}
