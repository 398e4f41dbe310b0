/**
 * One OpenTelemetry trace per call, through `@opentelemetry/api` only: a no-op unless the process
 * registers an SDK (see docs/operations.md, "Tracing"). The root span `call` opens at admission
 * (its start time is the webhook's arrival) so its trace id can go into every log line of the call;
 * state transitions and bot events become span events; at the end, the stages are written as
 * child spans with explicit start and end times taken from the call's timeline (the worker reports
 * its stages over IPC, so the worker itself needs no tracing).
 */
import { context, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import type { CallIdentity } from '../core/call-identity.js';
import { GOOD_OUTCOMES, type Outcome } from '../core/outcome.js';
import type { Timeline, TimelineStage } from '../core/timeline.js';
import { stageDurations, TURN_STAGES, type TurnTiming } from '../core/turn-timing.js';

const TRACER = 'patchbay';

/** Child spans: name, start stage, end stages (the first one present), in timeline terms. */
const STAGE_SPANS: ReadonlyArray<[name: string, from: TimelineStage, to: readonly TimelineStage[]]> = [
  ['webhook', 'received', ['queued', 'ended']],
  ['room', 'received', ['room_created']],
  ['queue', 'queued', ['worker_assigned', 'ended']],
  ['worker', 'worker_assigned', ['ended']],
  ['join', 'worker_assigned', ['joined']],
  ['dialin-ready', 'joined', ['dialin_ready']],
  ['forward', 'forward_sent', ['forwarded']],
  ['connected', 'forwarded', ['connected']],
  ['bot', 'bot_started', ['caller_left', 'ended']],
];

export class CallTrace {
  private readonly root: Span;
  /** The trace id (32 hex), or undefined when tracing is off (no SDK registered, or not sampled). */
  readonly traceId: string | undefined;
  private endingAtMs: number | undefined;

  constructor(who: Pick<CallIdentity, 'id' | 'callId' | 'bot' | 'roomName'>, receivedAtMs: number) {
    this.root = trace.getTracer(TRACER).startSpan('call', {
      startTime: receivedAtMs,
      attributes: { 'patchbay.call.id': who.id, 'daily.call_id': who.callId, 'patchbay.bot': who.bot, 'patchbay.room': who.roomName },
    });
    const sc = this.root.spanContext();
    this.traceId = this.root.isRecording() && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
  }

  /** A state transition or another moment of the call (no PII in `attributes`). */
  event(name: string, atMs: number, attributes?: Attributes): void {
    this.root.addEvent(name, attributes, atMs);
    if (name === 'state.ending') this.endingAtMs = atMs;
  }

  /**
   * A timed turn: a child span `turn` from its first stage to its first frame sent, each stage an
   * event at its time, and as attributes its offsets (`patchbay.turn.<stage>_ms`), index and slowest stage.
   */
  turn(t: TurnTiming): void {
    if (!this.root.isRecording()) return;
    const attributes: Attributes = { 'patchbay.turn.index': t.index, 'patchbay.turn.total_ms': t.totalMs };
    if (t.slowest) attributes['patchbay.turn.slowest'] = t.slowest;
    for (const [s, ms] of stageDurations(t.stages)) attributes[`patchbay.turn.${s}_ms`] = ms;
    const parent = trace.setSpan(context.active(), this.root);
    const span = trace.getTracer(TRACER).startSpan('turn', { startTime: t.atMs, attributes }, parent);
    for (const s of TURN_STAGES) {
      const at = t.stages[s];
      if (at !== undefined) span.addEvent(s, { 'patchbay.turn.offset_ms': at }, t.atMs + at);
    }
    span.end(t.atMs + t.totalMs);
  }

  /** Writes the stage spans from the timeline and closes the root span. */
  end(timeline: Timeline, outcome: Outcome): void {
    if (!this.root.isRecording()) return;
    const tracer = trace.getTracer(TRACER);
    const parent = trace.setSpan(context.active(), this.root);
    const spans: Array<[string, number, number]> = [];
    for (const [name, from, to] of STAGE_SPANS) {
      const start = timeline[from];
      const stop = to.map((s) => timeline[s]).find((v) => v !== undefined);
      if (start !== undefined && stop !== undefined) spans.push([name, start, Math.max(start, stop)]);
    }
    const endedAt = timeline.ended ?? Date.now();
    spans.push(['end', this.endingAtMs ?? endedAt, endedAt]);
    for (const [name, start, stop] of spans) tracer.startSpan(name, { startTime: start }, parent).end(stop);
    this.root.setAttribute('patchbay.outcome', outcome);
    // Not the detail: it may carry numbers (the logger masks them; span exporters do not).
    if (!GOOD_OUTCOMES.includes(outcome)) this.root.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
    this.root.end(endedAt);
  }
}
