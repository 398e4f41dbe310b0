/**
 * A call as the store holds it (masked per the PII rule, ready to become a row), and the shapes
 * it is made from (`RecordInput`, `RecordPatch`) and shown as (`StoredCall`).
 */
import { maskNumber } from '../core/logger.js';
import { maskEvent, maskFreeText, searchDigits } from './pii.js';
import { storedCall, type CallRow } from './rows.js';
import type { RecordEvent, RecordInput, RecordPatch, StoredCall } from './types.js';

/** Events kept per call (a bot that loops must not grow a row without end). */
export const MAX_EVENTS_PER_CALL = 500;

/** A call as this store holds it: masked per the PII rule, ready to become a row. */
export interface Snapshot {
  row: Omit<CallRow, 'timeline' | 'events'>;
  timeline: Record<string, number>;
  events: RecordEvent[];
  truncated: boolean;
  seq?: number;
}

export function fromInput(rec: RecordInput, pii: boolean, replicaId: string): Snapshot {
  const now = Date.now();
  const timeline: Record<string, number> = {};
  for (const [k, v] of Object.entries(rec.timeline)) if (typeof v === 'number') timeline[k] = v;
  const s: Snapshot = {
    row: {
      id: rec.id,
      call_id: rec.callId,
      call_domain: rec.callDomain,
      from_number: pii ? rec.from : (maskNumber(rec.from) ?? ''),
      to_number: pii ? rec.to : (maskNumber(rec.to) ?? ''),
      from_digits: searchDigits(rec.from, pii),
      to_digits: searchDigits(rec.to, pii),
      bot: rec.bot,
      room_name: rec.roomName,
      state: rec.state,
      outcome: rec.outcome ?? null,
      detail: rec.detail === undefined ? null : pii ? rec.detail : maskFreeText(rec.detail),
      received_at_ms: timeline.received ?? now,
      ended_at_ms: null,
      updated_at_ms: now,
      warm_start: rec.warmStart === undefined ? null : rec.warmStart ? 1 : 0,
      worker_pid: rec.workerPid ?? null,
      replica_id: rec.replicaId ?? replicaId,
      trace_id: rec.traceId ?? null,
      path: rec.path ?? null,
      bot_version: rec.botVersion ?? null,
    },
    timeline,
    events: [],
    truncated: false,
  };
  if (rec.events) addEvents(s, rec.events, pii);
  return s;
}

export function applyPatch(s: Snapshot, p: RecordPatch, pii: boolean): void {
  const r = s.row;
  if (p.callId !== undefined) r.call_id = p.callId;
  if (p.callDomain !== undefined) r.call_domain = p.callDomain;
  if (p.from !== undefined) {
    r.from_number = pii ? p.from : (maskNumber(p.from) ?? '');
    r.from_digits = searchDigits(p.from, pii);
  }
  if (p.to !== undefined) {
    r.to_number = pii ? p.to : (maskNumber(p.to) ?? '');
    r.to_digits = searchDigits(p.to, pii);
  }
  if (p.bot !== undefined) r.bot = p.bot;
  if (p.roomName !== undefined) r.room_name = p.roomName;
  if (p.state !== undefined) r.state = p.state;
  if (p.outcome !== undefined) r.outcome = p.outcome;
  if (p.detail !== undefined) r.detail = pii ? p.detail : maskFreeText(p.detail);
  if (p.warmStart !== undefined) r.warm_start = p.warmStart ? 1 : 0;
  if (p.workerPid !== undefined) r.worker_pid = p.workerPid;
  if (p.replicaId !== undefined) r.replica_id = p.replicaId;
  if (p.traceId !== undefined) r.trace_id = p.traceId;
  if (p.path !== undefined) r.path = p.path;
  if (p.botVersion !== undefined) r.bot_version = p.botVersion;
  if (p.timeline) {
    for (const [k, v] of Object.entries(p.timeline)) if (typeof v === 'number') s.timeline[k] ??= v;
    if (s.timeline.received !== undefined) r.received_at_ms = s.timeline.received;
  }
  r.updated_at_ms = Date.now();
}

export function addEvents(s: Snapshot, events: RecordEvent[], pii: boolean): void {
  for (const e of events) {
    if (s.events.length >= MAX_EVENTS_PER_CALL) {
      if (!s.truncated) s.events.push({ kind: 'warning', value: `event log truncated at ${MAX_EVENTS_PER_CALL} entries`, atMs: e.atMs });
      s.truncated = true;
      return;
    }
    const clean = { kind: String(e.kind), value: String(e.value ?? ''), atMs: Number(e.atMs) };
    s.events.push(pii ? clean : maskEvent(clean));
  }
}

export function snapshotOf(c: StoredCall): Snapshot {
  return {
    row: {
      id: c.id,
      call_id: c.callId,
      call_domain: c.callDomain,
      from_number: c.from,
      to_number: c.to,
      from_digits: '',
      to_digits: '',
      bot: c.bot,
      room_name: c.roomName,
      state: c.state,
      outcome: c.outcome,
      detail: c.detail,
      received_at_ms: c.receivedAtMs,
      ended_at_ms: c.endedAtMs,
      updated_at_ms: c.endedAtMs ?? c.receivedAtMs,
      warm_start: c.warmStart === null ? null : c.warmStart ? 1 : 0,
      worker_pid: c.workerPid,
      replica_id: c.replicaId,
      trace_id: c.traceId,
      path: c.path,
      bot_version: c.botVersion,
    },
    timeline: c.timeline,
    events: c.events,
    truncated: false,
    seq: c.seq,
  };
}

export function toStored(s: Snapshot, seq: number): StoredCall {
  return storedCall(s.row, { seq, timeline: { ...s.timeline }, events: [...s.events], openUntilMs: Date.now() });
}
