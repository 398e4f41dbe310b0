/**
 * The callback offer (CALLBACK_OFFER=true, docs/outbound.md "Callbacks"): a webhook the dispatcher
 * would answer busy (past the hold budget, or every bot slot and queue place taken) is admitted
 * instead, and its caller is connected to the built-in offer bot (src/workers/child/
 * callback-offer-bot.ts) on a worker of its own, outside the bot slots — the way the apology bot runs
 * when a call cannot be served. At most CALLBACK_OFFER_MAX_CONCURRENT offers run at once; beyond them
 * the busy answer stands. The record keeps the routed bot; the offer bot reports the number as a
 * `callback` bot event, and the request is stored (callbacks.ts) the moment it arrives.
 */
import type { Logger } from 'pino';
import { CALLBACK_OFFER_BOT, isCallbackNumber } from '../core/callback.js';
import type { Config } from '../core/config.js';
import { errorMessage } from '../core/errors.js';
import type { PinlessCall } from '../daily/types.js';
import type { Call } from '../call/call.js';
import type { ForwardFn } from '../workers/parent/fallback.js';
import type { WorkerPool } from '../workers/parent/pool.js';
import { runOnWorker } from '../workers/parent/run-call.js';
import type { CallbackRequest } from './callback-types.js';
import type { Dispatcher } from './dispatcher.js';
import type { AdmitResult } from './types.js';

export interface CallbackOfferDeps {
  config: Config;
  logger: Logger;
  dispatcher: Dispatcher;
  pool: WorkerPool;
  forward?: ForwardFn | undefined;
  /** Stores the request (Callbacks.request). */
  request(r: CallbackRequest): Promise<void>;
}

type Busy = Extract<AdmitResult, { kind: 'busy' }>;

export class CallbackOffer {
  private running = 0;
  private readonly stop = new AbortController();

  constructor(private readonly d: CallbackOfferDeps) {}

  /** Offers may still start (used by the dispatcher before it answers busy). */
  get available(): boolean {
    return !this.stop.signal.aborted && this.running < this.d.config.outbound.callbackOfferMaxConcurrent;
  }

  /** Admits the call to the offer bot, or answers `busy` as the dispatcher would have. */
  async offer(pinless: PinlessCall, receivedAtMs: number, busy: Busy): Promise<AdmitResult> {
    if (!this.available) return busy;
    this.running++;
    let started = false;
    try {
      const p = await this.d.dispatcher.provision(pinless, receivedAtMs, { cold: true });
      if (!('call' in p)) return p;
      const { call, assignment } = p;
      call.log.info({ reason: busy.reason, why: busy.message }, 'no bot within the hold budget: offering a callback');
      this.watch(call, busy.reason);
      call.advance('queued');
      const { botConfig: _routed, ...rest } = assignment;
      void runOnWorker(call, { ...rest, bot: CALLBACK_OFFER_BOT }, this.runDeps())
        .then(async ({ reaped }) => {
          await this.d.dispatcher.finish(call);
          await reaped;
        })
        .catch((err: unknown) => call.log.error({ err }, 'callback offer bookkeeping failed'))
        .finally(() => this.running--);
      started = true;
      return { kind: 'accepted', duplicate: false, record: call.record };
    } finally {
      if (!started) this.running--;
    }
  }

  /** No new offers, and none waits for a worker any more; those running finish (the dispatcher's drain waits for their calls). */
  close(): void {
    this.stop.abort();
  }

  private runDeps() {
    const { pool, config, forward } = this.d;
    return { pool, config, stop: this.stop.signal, forward };
  }

  /** The offer bot's `callback` event: the request is stored at once (the caller may still be hearing the goodbye). */
  private watch(call: Call, reason: string): void {
    let seen = 0;
    let stored = false;
    call.on('changed', (c) => {
      const events = c.record.botEvents;
      for (; seen < events.length && !stored; seen++) {
        const ev = events[seen]!;
        if (ev.kind !== 'callback' || !isCallbackNumber(ev.value)) continue;
        const number = ev.value;
        stored = true;
        const r = c.record;
        const req: CallbackRequest = { id: r.id, number, to: r.to, bot: r.bot, reason, requestedAtMs: ev.atMs };
        this.d.request(req).catch((err: unknown) => call.log.error({ err: errorMessage(err) }, 'callback: could not be stored'));
      }
    });
  }
}
