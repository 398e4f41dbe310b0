/**
 * The pino root of a process. Child loggers carry `callId`, `bot` and `pid`.
 * Secrets never reach logs: the redact paths below cover headers and fields that may
 * hold them; secret query parameters are redacted from every string (`redactSecretParams`) and the
 * query of dashboard routes is never logged (`safeUrl`); the configured secrets themselves (and their
 * base64 forms) are scrubbed from every line as a last line of defence (`secrets`). Phone numbers
 * are masked in every line (`maskLogFields`, LOG_MASK_NUMBERS).
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
    /** Configured secret values: replaced by [redacted] wherever they (or their base64 forms) appear. */
    secrets?: readonly (string | undefined)[];
  } = {},
): Logger {
  const mask = opts.maskNumbers ?? true;
  const scrub = secretScrubber(opts.secrets ?? []);
  const text = (t: string) => redactSecretParams(mask ? maskNumbersInText(t) : t);
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { pid: process.pid, ...(opts.name ? { name: opts.name } : {}), ...opts.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: {
      // Fastify's request lines (when any are written): method, path without secrets, peer.
      req: (r: { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } }) => ({
        method: r.method,
        url: safeUrl(r.url),
        remoteAddress: r.ip ?? r.socket?.remoteAddress,
      }),
    },
    formatters: {
      // Numbers are maskLogFields' business (it keeps the configured `numbers` list readable); here only secret parameters.
      log: (o: Record<string, unknown>) => scrubLogFields(mask ? maskLogFields(o) : o, redactSecretParams),
    },
    hooks: {
      // The message text too ("transferred to +1555…", "GET /x?token=…").
      logMethod(args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? text(a) : a)),
        );
      },
      // The finished line, child loggers' bindings included: no configured secret leaves the process.
      streamWrite: scrub,
    },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** Fields that hold a caller's or callee's number wherever they appear in a log line. */
const NUMBER_KEYS = new Set([
  'from',
  'to',
  'From',
  'To',
  'caller',
  'callee',
  'number',
  'phoneNumber',
  'phone_number',
  'sipUri',
  'sip_uri',
  'displayName',
  'target',
]);
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

/** Query parameters that carry credentials: their values are never logged. */
export const SECRET_PARAMS = [
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'key',
  'api_key',
  'apikey',
  'secret',
  'client_secret',
  'password',
  'passwd',
  'pwd',
  'auth',
  'authorization',
  'hmac',
  'signature',
  'sig',
  'code',
  'session',
  'jwt',
];
const SECRET_PARAM_RE = new RegExp(`([?&;](?:${SECRET_PARAMS.join('|')})=)[^&#\\s"']*`, 'gi');

/** "…?token=abc&x=1" → "…?token=[redacted]&x=1", in any text (URLs inside messages too). */
export function redactSecretParams(text: string): string {
  return text.includes('=') ? text.replace(SECRET_PARAM_RE, '$1[redacted]') : text;
}

/** Paths whose query string is never logged: the dashboard, its socket and /calls (the token rides there). */
const QUERYLESS_PATHS = /^\/(dashboard|ws\/|calls)/;

/** A request URL as it may be logged: no query on dashboard routes, secret parameters redacted elsewhere. */
export function safeUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  if (q < 0) return url;
  return QUERYLESS_PATHS.test(url) ? url.slice(0, q) : redactSecretParams(url);
}

/** The forms a secret may take in a line: as given, base64 (basic auth), and decoded/re-encoded base64 (HMAC keys). */
function secretForms(secret: string): string[] {
  const forms = new Set<string>([secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url')]);
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(secret) && secret.length >= 16) {
    const raw = Buffer.from(secret.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    forms.add(raw.toString('hex'));
    forms.add(raw.toString('base64url'));
  }
  // Basic auth "user:password": the password alone too.
  const colon = secret.indexOf(':');
  if (colon > 0 && secret.length - colon > 4) forms.add(secret.slice(colon + 1));
  return [...forms].filter((f) => f.length >= 6);
}

function secretScrubber(secrets: readonly (string | undefined)[]): (text: string) => string {
  const forms = [
    ...new Set(
      secrets
        .flatMap((s) =>
          s
            ? s
                .split(',')
                .map((x) => x.trim())
                .filter(Boolean)
            : [],
        )
        .flatMap(secretForms),
    ),
  ].sort((a, b) => b.length - a.length);
  if (forms.length === 0) return (t) => t;
  return (t) => {
    let out = t;
    for (const f of forms) if (out.includes(f)) out = out.split(f).join('[redacted]');
    return out;
  };
}

/** Applies `text` to every string of a log object (top level, one level down, and error messages). */
function scrubLogFields(o: Record<string, unknown>, text: (t: string) => string, depth = 0): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(o)) {
    let m: unknown = v;
    if (typeof v === 'string') m = text(v);
    else if (v instanceof Error) {
      const msg = text(v.message);
      const stack = v.stack === undefined ? undefined : text(v.stack);
      if (msg !== v.message || stack !== v.stack) m = { type: v.name, message: msg, stack };
    } else if (depth === 0 && v && typeof v === 'object' && !Array.isArray(v)) m = scrubLogFields(v as Record<string, unknown>, text, 1);
    else if (Array.isArray(v) && v.some((x) => typeof x === 'string')) {
      const a = v.map((x) => (typeof x === 'string' ? text(x) : x));
      if (a.some((x, i) => x !== v[i])) m = a;
    }
    if (m !== v) (out ??= { ...o })[k] = m;
  }
  return out ?? o;
}
