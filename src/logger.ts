/**
 * The pino root of a process. Child loggers carry `callId`, `bot` and `pid`.
 * Secrets never reach logs: the redact paths below cover headers and fields that may
 * hold them, and phone numbers are masked in every line (`maskLogFields`, LOG_MASK_NUMBERS).
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export const redactPaths = [
  'req.headers.authorization',
  'req.headers["x-pinless-signature"]',
  'req.headers["x-webhook-signature"]',
  'headers.authorization',
  '*.apiKey',
  '*.token',
  '*.hmac',
  'apiKey',
  'token',
  'hmac',
  'secret',
  '*.secret',
  'redisUrl',
  '*.redisUrl',
];

export function createLogger(
  opts: {
    level?: string;
    name?: string;
    base?: Record<string, unknown>;
    /** Mask phone numbers in every line (LOG_MASK_NUMBERS, default true): see `maskLogFields`. */
    maskNumbers?: boolean;
    /** Where lines go (default stdout); tests pass a stream to read them. */
    destination?: pino.DestinationStream;
  } = {},
): Logger {
  const mask = opts.maskNumbers ?? true;
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { pid: process.pid, ...(opts.name ? { name: opts.name } : {}), ...opts.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(mask
      ? {
          formatters: { log: (o: Record<string, unknown>) => maskLogFields(o) },
          hooks: {
            // The message text too ("transferred to +1555…"): mask anything number-like in string arguments.
            logMethod(args: unknown[], method: (...a: unknown[]) => void) {
              method.apply(this, args.map((a) => (typeof a === 'string' ? maskNumbersInText(a) : a)));
            },
          },
        }
      : {}),
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** Fields that hold a caller's or callee's number wherever they appear in a log line. */
const NUMBER_KEYS = new Set(['from', 'to', 'From', 'To', 'caller', 'callee', 'number', 'phoneNumber', 'phone_number', 'sipUri', 'sip_uri', 'displayName', 'target']);
/** E.164 numbers inside free text ("+" and 7–15 digits; bare digits could be timestamps or ids). */
const NUMBER_IN_TEXT = /\+\d{7,15}\b/g;

/** Masks every phone number in `text`, keeping the last 4 digits. */
export function maskNumbersInText(text: string): string {
  return text.replace(NUMBER_IN_TEXT, (n) => maskNumber(n)!);
}

/**
 * Masks phone numbers in a log object (top level and one level down): values of number-like
 * keys (`from`, `to`, `phone_number`, …, also lists of them) and E.164 numbers inside other
 * strings. Idempotent.
 */
export function maskLogFields(o: Record<string, unknown>, depth = 0): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(o)) {
    let m: unknown = v;
    if (typeof v === 'string') m = NUMBER_KEYS.has(k) ? maskNumber(v) : maskNumbersInText(v);
    else if (Array.isArray(v)) {
      // Lists of number-keyed fields only: `numbers` in the start-up lines is this service's own
      // configured numbers (configuration, not callers), and tools read it from the log.
      if (NUMBER_KEYS.has(k) && v.some((x) => typeof x === 'string')) m = v.map((x) => (typeof x === 'string' ? maskNumber(x) : x));
    } else if (depth === 0 && v && typeof v === 'object' && !(v instanceof Error)) m = maskLogFields(v as Record<string, unknown>, 1);
    if (m !== v) (out ??= { ...o })[k] = m;
  }
  return out ?? o;
}

/** "+15551234567" → "*******4567". Keeps the last 4 digits, so logs can be correlated, not read. */
export function maskNumber(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = /^(sip:)?([^@]*)(@.*)?$/.exec(value);
  const user = m?.[2] ?? value;
  if (user.length <= 4) return value;
  const masked = '*'.repeat(user.length - 4) + user.slice(-4);
  return `${m?.[1] ?? ''}${masked}${m?.[3] ?? ''}`;
}
