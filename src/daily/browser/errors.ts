/** Typed errors of the daily (Chromium) call client. All are `PatchbayError`s with a stable code. */
import { PatchbayError } from '../../core/errors.js';

/** `join()` did not get us into the room. `retryable` says whether another attempt may succeed. */
export class JoinError extends PatchbayError {
  override name = 'JoinError';
  /** daily-js's fatal error type when it gave one (`connection-error`, `exp-token`, `no-room` …). */
  readonly dailyErrorType: string | undefined;
  constructor(code: string, message: string, opts: { retryable: boolean; dailyErrorType?: string; cause?: unknown }) {
    super(code, message, opts);
    this.dailyErrorType = opts.dailyErrorType;
  }
}

/** The configured Chromium executable does not exist or cannot be run. */
export class ChromiumMissingError extends PatchbayError {
  override name = 'ChromiumMissingError';
  constructor(
    readonly executablePath: string,
    cause?: unknown,
  ) {
    super(
      'chromium_missing',
      `Chromium was not found at ${executablePath}: install it with \`apt-get install -y chromium\` ` +
        '(Debian) or set CHROMIUM_PATH to a Chromium/Chrome executable',
      { retryable: false, cause },
    );
  }
}

/** A daily-js method called through the page failed (rejected, threw, or the page is gone). */
export class DailyClientError extends PatchbayError {
  override name = 'DailyClientError';
  constructor(code: string, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(code, message, opts);
  }
}
