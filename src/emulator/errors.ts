/** The emulator's two error vocabularies: REST answers (Daily's `{error, info}`) and refused call-client actions. */

/** A REST error with Daily's `{error, info}` body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly info: string,
    readonly retryAfterSec?: number,
  ) {
    super(`${status} ${error}: ${info}`);
  }
}

/** The `error` field Daily uses for a status. */
export function dailyErrorName(status: number): string {
  if (status === 401) return 'authentication-error';
  if (status === 403) return 'forbidden-error';
  if (status === 404) return 'not-found';
  if (status === 429) return 'rate-limit-error';
  if (status >= 500) return 'server-error';
  return 'invalid-request-error';
}

/** An action refused by the platform (sent back as `ack {id, error, code}`). */
export class ActionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** `400 invalid-request-error` with `info`. */
export const badRequest = (info: string): ApiError => new ApiError(400, 'invalid-request-error', info);
