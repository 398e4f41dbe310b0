/** What the dashboard sends: a call as the page shows it (no SIP headers, numbers masked) and the socket's messages. */
import type { CallSummaryIdentity } from '../../core/call-identity.js';
import type { Outcome } from '../../core/outcome.js';
import type { CallRecord } from '../../call/call.js';
import { maskNumber } from '../../core/logger.js';
import type { StoredCall } from '../../records/store.js';
import { recordingSummary } from '../../records/recording.js';
import type { RecordEvent } from '../../records/types.js';

/** A call as the page shows it: its identity (numbers masked), state and timeline. */
export interface CallView extends CallSummaryIdentity {
  state: string;
  /** The latest stage reached. */
  stage: string;
  timeline: Record<string, number>;
  outcome: string | null;
  detail: string | null;
  warmStart: boolean | null;
  /** Which path the call took: `warm` (a warm room) or `cold` (a room per call); null when unknown. */
  path: 'warm' | 'cold' | null;
  workerPid: number | null;
  /** The call's trace id (OpenTelemetry), when tracing is on and known. */
  traceId: string | null;
  /** Fleet mode: the replica that runs (ran) the call. */
  replica?: string;
  /** The call's recording, when one was asked for (src/records/recording.ts): its state and mode. */
  recording?: { state: string; mode: string | null };
}

/** `{recording}` when the call's events ask for one, else nothing. */
function recordingOf(events: readonly RecordEvent[]): Pick<CallView, 'recording'> {
  const s = recordingSummary(events);
  return s.state === 'off' ? {} : { recording: { state: s.state, mode: s.mode } };
}

export type EventMessage =
  | {
      type: 'hello';
      nowMs: number;
      version: string;
      maxConcurrentBots: number;
      records: boolean;
      /** Every outcome (the filter's choices) and those that count as good, from src/core/outcome.ts. */
      outcomes: readonly Outcome[];
      goodOutcomes: readonly Outcome[];
      stats: StatsPayload;
      live: CallView[];
      recent: CallView[];
    }
  | { type: 'call'; nowMs: number; call: CallView }
  | { type: 'ended'; nowMs: number; call: CallView }
  | ({ type: 'stats'; nowMs: number } & StatsPayload);

export interface StatsPayload {
  queued: number;
  active: number;
  admitting: number;
  capacity: number;
  draining: boolean;
  workers: { idle: number; starting: number; busy: number; coldStarts: number; warmStarts: number };
}

function latestStage(timeline: Record<string, number | undefined>): string {
  let best = '';
  let at = -Infinity;
  for (const [k, v] of Object.entries(timeline)) {
    // `first_audio` is a measurement (connected → first bot audio), not a step of the call's progress.
    if (k === 'first_audio') continue;
    if (v !== undefined && v >= at) {
      // Equal times: later keys were set later (insertion order).
      best = k;
      at = v;
    }
  }
  return best;
}

export function viewOfRecord(r: CallRecord): CallView {
  const timeline = Object.fromEntries(Object.entries(r.timeline).filter((e): e is [string, number] => typeof e[1] === 'number'));
  return {
    id: r.id,
    callId: r.callId,
    from: maskNumber(r.from) ?? '',
    to: maskNumber(r.to) ?? '',
    bot: r.bot,
    state: r.state,
    stage: latestStage(timeline),
    timeline,
    outcome: r.outcome ?? null,
    detail: r.detail ?? null,
    warmStart: r.warmStart ?? null,
    path: r.path ?? null,
    workerPid: r.workerPid ?? null,
    traceId: r.traceId ?? null,
    ...(r.replica ? { replica: r.replica } : {}),
    ...recordingOf(r.botEvents),
  };
}

export function viewOfStored(c: StoredCall): CallView {
  return {
    id: c.id,
    callId: c.callId,
    from: maskNumber(c.from) ?? '',
    to: maskNumber(c.to) ?? '',
    bot: c.bot,
    state: 'ended',
    stage: latestStage(c.timeline),
    timeline: c.timeline,
    outcome: c.outcome,
    detail: c.detail,
    warmStart: c.warmStart,
    path: c.path,
    workerPid: c.workerPid,
    traceId: c.traceId,
    ...recordingOf(c.events),
  };
}
