/**
 * Typed errors. Every error that can cross a boundary (REST, IPC, bot API) carries a
 * stable `code` and a `retryable` flag so callers decide by data, not by message text.
 */
export class PatchbayError extends Error {
  override name = 'PatchbayError';
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.retryable = opts.retryable ?? false;
  }
}

/** An HTTP call to Daily (or the emulator) failed. */
export class DailyApiError extends PatchbayError {
  override name = 'DailyApiError';
  readonly status: number | undefined;
  /** Daily's `{error, info}` body, when there was one. */
  readonly dailyError: string | undefined;
  readonly info: string | undefined;
  /** Milliseconds from a `Retry-After` header, when the server sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    opts: {
      status?: number;
      dailyError?: string;
      info?: string;
      retryAfterMs?: number;
      retryable: boolean;
      cause?: unknown;
    },
  ) {
    super(opts.status === undefined ? 'daily_network' : `daily_http_${opts.status}`, message, opts);
    this.status = opts.status;
    this.dailyError = opts.dailyError;
    this.info = opts.info;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** A deadline passed. */
export class TimeoutError extends PatchbayError {
  override name = 'TimeoutError';
  constructor(what: string, ms: number, retryable = true) {
    super('timeout', `${what} timed out after ${ms} ms`, { retryable });
  }
}

/** Thrown by bot primitives once the call has ended (caller hung up, timeout, shutdown). */
export class CallEndedError extends PatchbayError {
  override name = 'CallEndedError';
  constructor(readonly reason: string) {
    super('call_ended', `the call has ended (${reason})`, { retryable: false });
  }
}

/** HTTP status codes worth retrying: 408, 425, 429 and 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/**
 * What a thrown value says, whatever was thrown: an Error's message, or the value as a string
 * (`throw 'x'` and rejected non-Errors happen in bot code and in libraries).
 */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null && 'message' in err && typeof err.message === 'string') return err.message;
  return String(err);
}

/** A thrown value as an Error: itself if it is one, else an Error carrying its text and the value as `cause`. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(errorMessage(err), { cause: err });
}

/** A system or driver error's `code` (ENOENT, SQLITE_BUSY, ERR_MODULE_NOT_FOUND …), if it has a string one. */
export function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}
