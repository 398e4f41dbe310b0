/**
 * Feeds the store from today's dispatcher events (`call-updated`, `call-ended` with its mutable
 * CallRecord): the first sight of a call opens its record, later ones update it, the end closes
 * it. Bot events are not announced by the dispatcher, so live calls are also looked at every
 * `sweepMs` for new ones. The lead rewires this to the call object's transition events.
 */
import type { BotEvent, CallRecord, Dispatcher } from '../dispatch/dispatcher.js';
import type { RecordStore } from './store.js';
import type { RecordEvent, RecordInput } from './types.js';

type Source = Pick<Dispatcher, 'on' | 'off' | 'liveCalls'>;

function inputOf(r: CallRecord): RecordInput {
  return {
    id: r.id,
    callId: r.callId,
    callDomain: r.callDomain,
    from: r.from,
    to: r.to,
    bot: r.bot,
    roomName: r.roomName,
    state: r.state,
    outcome: r.outcome,
    detail: r.detail,
    timeline: { ...r.timeline },
    warmStart: r.warmStart,
    workerPid: r.workerPid,
  };
}

const eventOf = (e: BotEvent): RecordEvent => ({ kind: e.kind, value: e.value, atMs: e.atMs });

/** Subscribes; answers the function that unsubscribes. */
export function recordDispatcherCalls(store: RecordStore, dispatcher: Source, opts: { sweepMs?: number } = {}): () => void {
  const seen = new Map<string, { events: number; dialinError: string | undefined }>();

  const newEvents = (r: CallRecord, s: { events: number; dialinError: string | undefined }): RecordEvent[] => {
    const out = r.botEvents.slice(s.events).map(eventOf);
    s.events = r.botEvents.length;
    if (r.dialinError !== undefined && r.dialinError !== s.dialinError) {
      s.dialinError = r.dialinError;
      out.push({ kind: 'dialin_error', value: r.dialinError, atMs: Date.now() });
    }
    return out;
  };

  const onUpdated = (r: CallRecord) => {
    if (r.state === 'ended') return;
    let s = seen.get(r.id);
    if (!s) {
      s = { events: 0, dialinError: undefined };
      seen.set(r.id, s);
      store.open(inputOf(r));
    } else {
      const { id: _id, ...patch } = inputOf(r);
      store.update(r.id, patch);
    }
    store.appendEvents(r.id, newEvents(r, s));
  };

  const onEnded = (r: CallRecord) => {
    const s = seen.get(r.id);
    seen.delete(r.id);
    if (s) {
      store.appendEvents(r.id, newEvents(r, s));
      store.close(inputOf(r));
    } else {
      // Never opened (refused at room creation): the whole log goes with the close.
      store.close({ ...inputOf(r), events: newEvents(r, { events: 0, dialinError: undefined }) });
    }
  };

  const sweep = setInterval(() => {
    for (const r of dispatcher.liveCalls()) {
      const s = seen.get(r.id);
      if (s && r.botEvents.length > s.events) store.appendEvents(r.id, newEvents(r, s));
    }
  }, opts.sweepMs ?? 500);
  sweep.unref();

  dispatcher.on('call-updated', onUpdated);
  dispatcher.on('call-ended', onEnded);
  return () => {
    clearInterval(sweep);
    dispatcher.off('call-updated', onUpdated);
    dispatcher.off('call-ended', onEnded);
  };
}
