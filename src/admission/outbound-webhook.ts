/**
 * The outbound calls' status webhook: one POST per status change, signed the way Daily signs its
 * pinless dial-in webhook (src/daily/signature.ts): base64 HMAC-SHA256, keyed by the base64-decoded
 * secret, over `timestamp + "." + body`, in `X-Webhook-Signature`, the timestamp (epoch seconds) in
 * `X-Webhook-Timestamp`. The secret is OUTBOUND_WEBHOOK_SECRET, else CALLS_API_TOKEN's bytes.
 * Best effort: a failed delivery is logged, retried twice, and never holds a call.
 */
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import { errorMessage } from '../core/errors.js';
import { signPinless } from '../daily/signature.js';
import { maskNumber } from '../core/logger.js';

const ATTEMPTS = 3;
const TIMEOUT_MS = 5_000;

/** The webhook's key (base64), as `verifyPinlessSignature` takes secrets. */
export function statusWebhookSecret(o: Config['outbound']): string | undefined {
  return o.webhookSecret ?? (o.apiToken ? Buffer.from(o.apiToken).toString('base64') : undefined);
}

export interface StatusPayload {
  id: string;
  direction: 'outbound';
  status: string;
  result: string | null;
  outcome: string | null;
  detail: string | null;
  attempt: number;
  to: string;
  bot: string;
  metadata: Record<string, unknown>;
  atMs: number;
}

export async function sendStatusWebhook(
  url: string,
  v: Omit<StatusPayload, 'atMs' | 'attempt'> & { attempts: number },
  atMs: number,
  o: Config['outbound'],
  log: Logger,
): Promise<void> {
  const secret = statusWebhookSecret(o);
  const payload: StatusPayload = {
    id: v.id,
    direction: 'outbound',
    status: v.status,
    result: v.result,
    outcome: v.outcome,
    detail: v.detail,
    attempt: v.attempts,
    to: maskNumber(v.to) ?? '',
    bot: v.bot,
    metadata: v.metadata,
    atMs,
  };
  const body = JSON.stringify(payload);
  const ts = String(Math.floor(Date.now() / 1000));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-webhook-timestamp': ts };
  if (secret) headers['x-webhook-signature'] = signPinless(body, secret, ts);
  for (let i = 1; i <= ATTEMPTS; i++) {
    try {
      const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
      await res.body?.cancel();
      if (res.ok) return;
      if (res.status < 500 && res.status !== 429) throw new Error(`HTTP ${res.status}`);
    } catch (err) {
      if (i === ATTEMPTS) return log.warn({ id: v.id, status: v.status, err: errorMessage(err) }, 'outbound status webhook failed');
    }
    await new Promise((r) => setTimeout(r, 250 * i));
  }
}
