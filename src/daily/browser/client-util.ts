/** Helpers of the daily client that need no browser: timeouts, aborts, and join-error mapping. */
import { JoinError } from './errors.js';

/** daily-js fatal error types that another attempt with the same room and token cannot fix. */
const NON_RETRYABLE_DAILY_ERRORS = new Set([
  'exp-room',
  'exp-token',
  'nbf-room',
  'nbf-token',
  'no-room',
  'not-allowed',
  'meeting-full',
  'ejected',
  'end-of-life',
]);

export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export function abortError(signal: AbortSignal): unknown {
  if (signal.reason !== undefined) return signal.reason;
  const e = new Error('This operation was aborted');
  e.name = 'AbortError';
  return e;
}

/** Builds the one typed error for a failed join from daily-js's rejection (often a plain string). */
export function joinErrorFrom(rejection: string, lastError: unknown, fallbackBundleUrl: string): JoinError {
  const le = (lastError ?? {}) as { errorMsg?: unknown; error?: { type?: unknown; msg?: unknown; details?: Record<string, unknown> } };
  const type = typeof le.error?.type === 'string' ? le.error.type : undefined;
  const details = le.error?.details ?? {};
  const bundleFailure = /Failed to load call object bundle|when loading call object bundle/.test(rejection) || details.on === 'load';
  if (bundleFailure) {
    const fromDetails = typeof details.bundleUrl === 'string' ? details.bundleUrl : undefined;
    const fromMsg = /bundle (\S+?):?\s/.exec(`${rejection} `)?.[1];
    const where = fromDetails ?? fromMsg ?? fallbackBundleUrl;
    return new JoinError('daily_bundle_unavailable', `Daily's call-machine bundle could not be loaded from ${where}: ${rejection}`, {
      retryable: true,
      dailyErrorType: type ?? 'connection-error',
    });
  }
  const retryable = type === undefined || !NON_RETRYABLE_DAILY_ERRORS.has(type);
  const msg = typeof le.errorMsg === 'string' && le.errorMsg !== rejection ? `${rejection} (${le.errorMsg})` : rejection;
  return new JoinError(type ? `daily_join_${type}` : 'daily_join_failed', `joining the Daily room failed: ${msg}`, {
    retryable,
    ...(type ? { dailyErrorType: type } : {}),
  });
}
