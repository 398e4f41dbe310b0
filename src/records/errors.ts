import { PatchbayError } from '../core/errors.js';

/** The records database cannot be used (start-up): names the file or the redacted URL. */
export class RecordsError extends PatchbayError {
  override name = 'RecordsError';
  constructor(
    readonly path: string,
    message: string,
    opts: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super('records_unavailable', message, { retryable: false, ...opts });
  }
}
