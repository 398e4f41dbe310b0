/**
 * `collectDigits`: keys from the caller's digit buffer until `maxDigits`, the terminator or a
 * timeout. A sensitive collection (PCI, `sensitive: true`) pauses the call's recording first and
 * resumes it after, also when it throws, and reports only how many keys came.
 */
import type { CollectDigitsOptions } from './index.js';
import type { Inbox } from './inbox.js';

export interface DigitSource {
  digits: Inbox<string>;
  signal: AbortSignal;
  /** The bot event: the keys, or `[sensitive input: N keys]`. */
  report(value: string): void;
  pause(): Promise<void>;
  resume(): Promise<void>;
}

export async function collectDigits(opts: CollectDigitsOptions, src: DigitSource): Promise<string> {
  if (!opts.sensitive) {
    const got = await readDigits(opts, src);
    src.report(got);
    return got;
  }
  // PCI: nothing of the input reaches a recording, the record, a log line or a transcript.
  await src.pause();
  try {
    const got = await readDigits(opts, src);
    src.report(`[sensitive input: ${got.length} keys]`);
    return got;
  } finally {
    // Also when the collection throws (the call ended, a bad option).
    void src.resume();
  }
}

async function readDigits(opts: CollectDigitsOptions, { digits, signal }: DigitSource): Promise<string> {
  const max = opts.maxDigits ?? 1;
  if (!Number.isInteger(max) || max < 1) throw new TypeError('collectDigits: maxDigits must be a positive integer');
  if (opts.terminator !== undefined && !/^[0-9*#A-D]$/.test(opts.terminator))
    throw new TypeError('collectDigits: terminator must be one DTMF key (0-9 * # A-D)');
  const first = opts.firstDigitTimeoutMs ?? 5_000;
  const inter = opts.interDigitTimeoutMs ?? 3_000;
  let got = '';
  while (got.length < max) {
    const d = await digits.next(got.length === 0 ? first : inter, signal);
    if (d === undefined) break;
    if (opts.terminator && d === opts.terminator) break;
    got += d;
  }
  // "1234#" with maxDigits 4: the terminator already typed belongs to this input, not the next.
  if (got.length === max && opts.terminator) digits.dropHead(opts.terminator);
  return got;
}
