/**
 * The pino root of a process. Child loggers carry `callId`, `bot` and `pid`.
 * Secrets never reach logs: the redact paths below cover headers and fields that may
 * hold them, and phone numbers are masked by `maskNumber` wherever we log them.
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
];

export function createLogger(opts: { level?: string; name?: string; base?: Record<string, unknown> } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { pid: process.pid, ...(opts.name ? { name: opts.name } : {}), ...opts.base },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options);
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
