/**
 * Display names from a caller's `From` (issue 21, item 10): whatever the webhook carries, the name
 * given to Daily is well-formed UTF-16 (so encodeURIComponent, which threw on a lone surrogate on
 * the warm path, accepts it) with no control character (no CR/LF into a SIP display name).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { callerDisplayName, cleanCallerText, MAX_DISPLAY_NAME_CHARS, WITHHELD_DISPLAY_NAME } from '../../src/daily/sip.js';

const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
/** Any UTF-16 text, lone surrogates and control characters included. */
const anyText = fc.string({
  unit: fc.oneof(
    fc.constantFrom('\uD800', '\uDFFF', '\r', '\n', '\u0000', '\u0085', '\u2028'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  ),
  maxLength: 100,
});

describe('caller display names', () => {
  it('well-formed, no control characters, encodable, bounded — for any From', () => {
    fc.assert(
      fc.property(anyText, (from) => {
        const name = callerDisplayName(from);
        expect(wellFormed(name)).toBe(true);
        expect(name).not.toMatch(/[\p{Cc}\u2028\u2029]/u);
        expect(() => encodeURIComponent(name)).not.toThrow();
        expect([...name].length).toBeLessThanOrEqual(MAX_DISPLAY_NAME_CHARS);
        expect(cleanCallerText(cleanCallerText(from))).toBe(cleanCallerText(from));
      }),
      { numRuns: 500 },
    );
  });

  it('examples', () => {
    expect(callerDisplayName('+1555\uD800765')).toBe('+1555\uFFFD765');
    expect(callerDisplayName('Mallory\r\nX-Evil: 1')).toBe('Mallory X-Evil: 1');
    expect(callerDisplayName('\r\n')).toBe(WITHHELD_DISPLAY_NAME);
    expect(callerDisplayName('+15551234567')).toBe('+15551234567');
    expect(callerDisplayName('😀 Ann')).toBe('😀 Ann');
  });
});
