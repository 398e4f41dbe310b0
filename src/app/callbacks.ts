/**
 * Callbacks instead of hold (CALLBACK_OFFER=true, docs/outbound.md "Callbacks"), wired: the store
 * (the records database; in fleet mode the fleet queue in Redis, copied to the records database;
 * else memory), the scheduler that dials them through the outbound calls, and the offer the
 * dispatcher turns to before it answers busy.
 */
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { DailyRestClient } from '../daily/rest.js';
import { CallbackOffer } from '../admission/callback-offer.js';
import { MemoryCallbacks } from '../admission/callback-memory.js';
import { MirroredCallbacks } from '../admission/callback-mirror.js';
import type { CallbackStore } from '../admission/callback-types.js';
import { Callbacks } from '../admission/callbacks.js';
import type { Dispatcher } from '../admission/dispatcher.js';
import type { OutboundCalls, OutboundStatusHook } from '../admission/outbound.js';
import type { Route } from '../admission/router.js';
import type { WorkerPool } from '../workers/parent/pool.js';
import type { RecordStore } from '../records/store.js';
import type { Fleet } from '../fleet/fleet.js';
import type { CallAssignment } from '../workers/protocol.js';

export interface CallbackParts {
  callbacks: Callbacks;
  offer: CallbackOffer;
}

export interface CallbackWiring {
  config: Config;
  logger: Logger;
  /** The dispatcher and outbound calls (absent: CALLS_API_TOKEN unset and CALLBACK_OFFER off); callbacks follow the status changes. */
  admission: { dispatcher: Dispatcher; outbound: OutboundCalls | undefined; onOutboundStatus?: OutboundStatusHook };
  pool: WorkerPool;
  daily: DailyRestClient;
  route: Route;
  records: RecordStore | undefined;
}

/** Fleet mode: the fleet and its module (loaded only then). */
interface FleetParts {
  fleet: Fleet<CallAssignment>;
  mod: typeof import('../fleet/index.js');
}

function storeOf(w: CallbackWiring, fleet: FleetParts | undefined): CallbackStore {
  const db = w.records?.backend.callbacks;
  if (!fleet) return db ?? new MemoryCallbacks();
  const queue = new fleet.mod.RedisCallbacks(fleet.fleet);
  // A lost replica's callbacks: its claims back to pending, those it was dialling end (fleet.ts reaps it once).
  fleet.fleet.on('replica-lost', (lost) => {
    queue.recover(lost.replicaId, Date.now()).then(
      (r) => r.requeued + r.interrupted > 0 && w.logger.warn({ lost: lost.replicaId, ...r }, 'callbacks of a lost replica taken back'),
      (err: unknown) => w.logger.error({ err, lost: lost.replicaId }, 'callbacks of a lost replica: not taken back'),
    );
  });
  return db ? new MirroredCallbacks(queue, db, w.logger) : queue;
}

export function wireCallbacks(
  w: CallbackWiring,
  mod: FleetParts['mod'] | undefined,
  fleet: FleetParts['fleet'] | undefined,
): CallbackParts | undefined {
  const { dispatcher, outbound } = w.admission;
  if (!w.config.outbound.callbackOffer || !outbound) return undefined;
  const { config, logger, route } = w;
  const owner = fleet?.replicaId ?? config.resilience.replicaId;
  const store = storeOf(w, mod && fleet ? { mod, fleet } : undefined);
  const callbacks = new Callbacks({ config, logger, store, outbound, dispatcher, route, owner });
  w.admission.onOutboundStatus = (v, r) => callbacks.onStatus(v, r);
  const offer = new CallbackOffer({
    config,
    logger,
    dispatcher,
    pool: w.pool,
    forward: (p, signal, o) => w.daily.pinlessCallUpdate(p, { signal, ...o }),
    request: (r) => callbacks.request(r),
  });
  dispatcher.setCallbackOffer(offer);
  return { callbacks, offer };
}
