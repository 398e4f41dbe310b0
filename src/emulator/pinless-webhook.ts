/** The pinless webhook: Daily's POST to `room_creation_api` for a held call (and its configuration probe). */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { Timers } from './timers.js';
import type { PinlessDialinEntry, WebhookLogEntry } from './types.js';
import { errorMessage } from '../core/errors.js';

export class PinlessWebhookSender {
  /** The last 10 000 webhooks and probes, oldest first. */
  readonly log: WebhookLogEntry[] = [];
  private readonly aborts = new Set<AbortController>();
  private closed = false;

  constructor(private readonly o: { timers: Timers; timeoutMs: number; logger: Logger }) {}

  get inFlight(): number {
    return this.aborts.size;
  }

  /** Daily's probe when pinless dial-in is configured: a signed `{"To": <number>}`. */
  probe(entries: readonly PinlessDialinEntry[]): void {
    if (this.closed) return;
    for (const e of entries) {
      const to = e.phone_number ?? e.sip_uri;
      if (to !== undefined) void this.post(e, JSON.stringify({ To: to }), 'probe');
    }
  }

  /** POSTs a JSON body to `room_creation_api`, signed when the entry has an hmac; records it in `log`. */
  async post(
    entry: PinlessDialinEntry,
    body: string,
    kind: WebhookLogEntry['kind'],
    callId?: string,
  ): Promise<{ status?: number; error?: string }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (entry.hmac) {
      const ts = String(Math.floor(Date.now() / 1000));
      headers['x-pinless-timestamp'] = ts;
      headers['x-pinless-signature'] = createHmac('sha256', Buffer.from(entry.hmac, 'base64')).update(`${ts}.${body}`).digest('base64');
    }
    const rec: WebhookLogEntry = { atMs: Date.now(), kind, url: entry.room_creation_api, ...(callId ? { callId } : {}) };
    this.log.push(rec);
    if (this.log.length > 10_000) this.log.splice(0, this.log.length - 10_000);
    const ac = new AbortController();
    this.aborts.add(ac);
    const cancelTimeout = this.o.timers.after(this.o.timeoutMs, () => ac.abort(new Error('webhook timed out')));
    try {
      const res = await fetch(entry.room_creation_api, { method: 'POST', headers, body, signal: ac.signal });
      rec.status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      this.o.logger.debug({ callId, kind, status: res.status }, 'emulator: webhook answered');
    } catch (err) {
      rec.error = ac.signal.aborted ? errorMessage(ac.signal.reason ?? 'aborted') : errorMessage(err);
      this.o.logger.debug({ callId, kind, err: rec.error }, 'emulator: webhook failed');
    } finally {
      cancelTimeout();
      this.aborts.delete(ac);
    }
    return { ...(rec.status === undefined ? {} : { status: rec.status }), ...(rec.error === undefined ? {} : { error: rec.error }) };
  }

  close(): void {
    this.closed = true;
    for (const ac of this.aborts) ac.abort(new Error('emulator closed'));
  }
}
