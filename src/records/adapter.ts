/**
 * Feeds the store from the calls' own events (relayed by the dispatcher): the first transition of
 * a call opens its record, later transitions and changes update it (new bot events and Daily's
 * errors go to its event log), the transition to `ended` closes it.
 */
import type { CallRecord, CallTransition, Dispatcher } from '../admission/dispatcher.js';
import type { Call } from '../call/call.js';
import type { BotEvent } from '../core/timeline.js';
import type { RecordStore } from './store.js';
import type { RecordEvent, RecordInput } from './types.js';

type Source = Pick<Dispatcher, 'on' | 'off'>;

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
    ...(r.traceId ? { traceId: r.traceId } : {}),
    ...(r.path ? { path: r.path } : {}),
    ...(r.botVersion ? { botVersion: r.botVersion } : {}),
  };
}

const eventOf = (e: BotEvent): RecordEvent => ({ kind: e.kind, value: e.value, atMs: e.atMs });

/** Subscribes; answers the function that unsubscribes. */
export function recordDispatcherCalls(store: RecordStore, dispatcher: Source): () => void {
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

  const onTransition = (t: CallTransition) => {
    const r = t.call.record;
    const s = seen.get(r.id);
    if (t.to === 'ended') {
      seen.delete(r.id);
      // Never opened before (refused at room creation): the whole log goes with the close.
      const events = newEvents(r, s ?? { events: 0, dialinError: undefined });
      if (s) store.appendEvents(r.id, events);
      store.close(s ? inputOf(r) : { ...inputOf(r), events });
      return;
    }
    if (!s) {
      seen.set(r.id, { events: 0, dialinError: undefined });
      store.open(inputOf(r));
      return;
    }
    const { id: _id, ...patch } = inputOf(r);
    store.update(r.id, patch);
  };

  const onChanged = (c: Call) => {
    const r = c.record;
    const s = seen.get(r.id);
    if (!s || r.state === 'ended') return;
    const { id: _id, ...patch } = inputOf(r);
    store.update(r.id, patch);
    store.appendEvents(r.id, newEvents(r, s));
  };

  dispatcher.on('transition', onTransition);
  dispatcher.on('changed', onChanged);
  return () => {
    dispatcher.off('transition', onTransition);
    dispatcher.off('changed', onChanged);
  };
}
