/**
 * What a record keeps with CALL_RECORDS_STORE_PII=false (issue 21, item 9): keys the caller pressed,
 * read back by the bot in any spelling ("You pressed 4 * 1 * 1 #", "4*1*1*1#"), are never readable.
 * Property tests over key strings and the prompt texts around them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KEY_RUN, maskEvent, maskFreeText } from '../../src/records/pii.js';

const RUNS = 300;
const keyArb = fc.constantFrom(...'0123456789*#');
/** Two or more keys: a card number, a PIN, a key sequence ending in #. */
const keysArb = fc.array(keyArb, { minLength: 2, maxLength: 24 });
/** What may stand between the keys when they are read back. */
const sepArb = fc.constantFrom('', ' ', ', ', '-', '.', '/', ' * ', '  ');
/** Prompt text with no keypad key and no `+` in it. */
const wordsArb = fc.string({ maxLength: 40 }).map((s) => s.replace(/[\p{Nd}*#+•]/gu, ''));

/** The keys spelled out with `sep` between them (a separator that is itself a key is one more key). */
const spell = (keys: string[], sep: string) => keys.join(sep);

describe('PII masking of pressed keys (CALL_RECORDS_STORE_PII=false)', () => {
  it("the issue's examples", () => {
    expect(maskFreeText('You pressed 4 * 1 * 1 * 1 #')).toBe('You pressed • • • • • • • •');
    expect(maskFreeText('You pressed 4*1*1*1#')).toBe('You pressed ••••••••');
    expect(maskFreeText('Card 4111-1111-1111-1111#, thanks')).not.toMatch(/[\d#]/);
    // A lone key between words says nothing about the caller: menus stay readable.
    expect(maskFreeText('Press 1 for sales, press # to finish, * to go back')).toBe('Press 1 for sales, press # to finish, * to go back');
    expect(maskEvent({ kind: 'say', value: 'You entered 1*2#', atMs: 1 }).value).toBe('You entered ••••');
  });

  it('keys read back between any words: no key is left, and nothing else changes', () => {
    fc.assert(
      fc.property(wordsArb, keysArb, sepArb, wordsArb, (pre, keys, sep, post) => {
        const text = `${pre} ${spell(keys, sep)} ${post}`;
        const out = maskFreeText(text);
        expect(out).not.toMatch(/[\p{Nd}*#]/u);
        // Each key became one `•`: the prompt around them is as it was.
        expect(out).toBe(text.replace(/[\p{Nd}*#]/gu, '•'));
      }),
      { numRuns: RUNS },
    );
  });

  it('keys read back inside any text: the run is gone and no run of two keys is left outside masked numbers', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), keysArb, sepArb, fc.string({ maxLength: 40 }), (pre, keys, sep, post) => {
        const spelled = spell(keys, sep);
        const out = maskFreeText(`${pre} ${spelled} ${post}`);
        expect(out.includes(spelled)).toBe(false);
        // Outside E.164 numbers (masked like numbers, last 4 kept: `****4567`), no two keys are readable together.
        const outsideNumbers = out.replace(/\*+\p{Nd}{4}/gu, ' ');
        for (const m of outsideNumbers.matchAll(KEY_RUN)) expect(m[0]).not.toMatch(/\p{Nd}/u);
      }),
      { numRuns: RUNS },
    );
  });

  it('a lone key between words is kept', () => {
    fc.assert(
      fc.property(
        wordsArb.filter((s) => /\p{L}$/u.test(s)),
        keyArb,
        wordsArb.filter((s) => /^\p{L}/u.test(s)),
        (pre, key, post) => {
          const text = `${pre} ${key} ${post}`;
          expect(maskFreeText(text)).toBe(text);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
