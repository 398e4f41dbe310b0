/**
 * Callbacks instead of hold (CALLBACK_OFFER, docs/outbound.md "Callbacks"): the requests the offer
 * bot took (callback-offer.ts) wait in a durable store (callback-types.ts); when capacity frees up
 * they are dialled, oldest first, through the outbound machinery (outbound.ts) with the bot the
 * original call's `To` routes to, and the bot sees `call.callback`.
 *
 * Inbound callers keep priority: a callback is claimed only when an outbound call could start now
 * (`OutboundCalls.hasRoom`: a free bot slot, no inbound call queued or being admitted, under
 * OUTBOUND_MAX_CONCURRENT). A claim is atomic in the store, so in fleet mode two replicas never
 * dial the same callback; its `dialing` state is written when the worker reports it dials, before
 * the dial-out's rate grant. At start-up this replica's claims go back to pending and those it was
 * dialling end `interrupted` (never dialled twice); a lost replica's, in fleet mode, likewise.
 */
import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import { errorMessage } from '../core/errors.js';
import type { PinlessCall } from '../daily/types.js';
import type { CallbackRequest, CallbackRow, CallbackStore } from './callback-types.js';
import type { Dispatcher } from './dispatcher.js';
import type { OutboundCalls, OutboundRequest, OutboundView } from './outbound.js';
import { routeResult, type Route, type RouteResult } from './router.js';

export type { CallbackRequest, CallbackRow, CallbackStore } from './callback-types.js';

export interface CallbacksDeps {
  config: Config;
  logger: Logger;
  store: CallbackStore;
  outbound: OutboundCalls;
  dispatcher: Dispatcher;
  route: Route;
  /** This replica (the owner of its claims). */
  owner: string;
}

const TICK_MS = 250;
/** After a callback could not even be dialled, claims pause this long (a failing Daily is not hammered). */
const RETRY_PAUSE_MS = 5_000;

export class Callbacks {
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private again = false;
  private closed = false;
  private pausedUntilMs = 0;
  /** Callbacks this replica placed, by their outbound call's id. */
  private readonly placed = new Map<string, string>();

  constructor(private readonly d: CallbacksDeps) {
    this.log = d.logger.child({ component: 'callbacks' });
  }

  /** Takes back what this replica held before a restart, then dials whenever capacity frees up. */
  async start(): Promise<void> {
    const r = await this.d.store.recover(this.d.owner, Date.now());
    if (r.requeued + r.interrupted > 0) this.log.info(r, 'callbacks: claims of the previous run taken back');
    this.d.dispatcher.on('call-ended', () => setImmediate(() => this.tick()));
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    this.tick();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  /** Stores a callback the offer bot took (idempotent per original call). */
  async request(r: CallbackRequest): Promise<void> {
    await this.d.store.add(r);
    this.log.info({ id: r.id, bot: r.bot, reason: r.reason }, 'callback requested');
    this.tick();
  }

  list(): Promise<CallbackRow[]> {
    return this.d.store.list();
  }

  /** The outbound machinery's status changes: a callback's dialling and its end go to the store. */
  onStatus(v: OutboundView, req: OutboundRequest): void {
    const id = req.callback?.originalCallId;
    if (!id || this.placed.get(v.id) !== id) return;
    const now = Date.now();
    if (v.status === 'dialing' && v.attempts === 1) {
      void this.d.store
        .dialing(id, this.d.owner, v.id, now)
        .then((mine) => mine || this.log.error({ id }, 'callback: dialling a callback this replica no longer holds'))
        .catch((err: unknown) => this.log.error({ id, err: errorMessage(err) }, 'callback: could not mark it dialling'));
    } else if (v.status === 'ended') {
      this.placed.delete(v.id);
      const dialled = v.history.some((h) => h.status === 'dialing');
      // Never dialled (no room, no worker, the service stopping): nothing reached the caller, so it waits again.
      const step = dialled ? this.d.store.done(id, v.result ?? 'failed', now) : this.d.store.release(id, this.d.owner, now);
      if (!dialled) {
        this.pausedUntilMs = now + RETRY_PAUSE_MS;
        this.log.warn({ id, detail: v.detail }, 'callback: not dialled; back in the queue');
      }
      step.catch((err: unknown) => this.log.error({ id, err: errorMessage(err) }, 'callback: could not settle it'));
    }
  }

  /** Claims and places callbacks, oldest first, while an outbound call could start now. */
  tick(): void {
    if (this.closed) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    void this.drainQueue()
      .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'callbacks: the store did not answer; trying again'))
      .finally(() => {
        this.ticking = false;
        if (this.again && !this.closed) {
          this.again = false;
          this.tick();
        }
      });
  }

  private async drainQueue(): Promise<void> {
    while (!this.closed && Date.now() >= this.pausedUntilMs && this.d.outbound.hasRoom()) {
      const row = await this.d.store.claim(this.d.owner, Date.now());
      if (!row) return;
      // Capacity may have gone while the store answered (an inbound call arrived): give it back.
      if (this.closed || !this.d.outbound.hasRoom()) return this.d.store.release(row.id, this.d.owner, Date.now());
      this.place(row);
    }
  }

  private place(row: CallbackRow): void {
    const pinless: PinlessCall = { to: row.to, from: row.number, callId: `callback-${row.id}`, callDomain: '', sipHeaders: {} };
    let route: RouteResult = { bot: row.bot };
    try {
      route = routeResult(this.d.route(pinless));
    } catch (err) {
      this.log.warn({ id: row.id, err: errorMessage(err) }, 'callback: routing failed; the bot of the original call dials');
    }
    const req: OutboundRequest = {
      to: { phoneNumber: row.number },
      bot: route.bot,
      metadata: {},
      ...(route.config ? { botConfig: route.config } : {}),
      callback: { requestedAt: new Date(row.requestedAtMs).toISOString(), reason: row.reason, originalCallId: row.id },
    };
    // No idempotency key: the store's claim is what makes it once (a callback released after a failure is placed anew).
    const { view } = this.d.outbound.place(req);
    this.placed.set(view.id, row.id);
    this.log.info({ id: row.id, outboundId: view.id, bot: route.bot, waitedMs: Date.now() - row.requestedAtMs }, 'callback placed');
  }
}
