/**
 * The call object: one per admitted call, created at admission, and the only thing that changes
 * that call's state. Its states and the allowed transitions are `CALL_TRANSITIONS`; `advance()` is
 * the one state setter (it validates, stamps the timeline, and emits `transition`); `end()` takes
 * outcome claims and settles them by the precedence table in src/core/outcome.ts; `finish()` is the
 * last transition and writes the one "call ended" log line.
 *
 * Events (the dispatcher relays them; metrics, records, the dashboard and the trace subscribe):
 *   transition  { call, from, to, atMs }   every state change, exactly once each
 *   changed     call                        timeline stage, bot event, dial-in error, outcome detail
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { CallIdentity } from '../core/call-identity.js';
import { GOOD_OUTCOMES, settleOutcome, type EndClaimer, type Outcome, type OutcomeClaim } from '../core/outcome.js';
import type { BotEvent, CallPath, Timeline, TimelineStage } from '../core/timeline.js';
import { PatchbayError } from '../core/errors.js';
import { maskNumber } from '../core/logger.js';
import { CallTrace } from './trace.js';
import { checkedTurn, encodeTurn, TURN_EVENT_KIND, type TurnTiming } from '../core/turn-timing.js';

export type CallState = 'admitting' | 'queued' | 'starting' | 'active' | 'ending' | 'ended';

/** The allowed transitions. `ending`: the outcome is decided; the worker is reaped and the room released. */
export const CALL_TRANSITIONS: { readonly [S in CallState]: readonly CallState[] } = {
  admitting: ['queued', 'ending'],
  queued: ['starting', 'ending'],
  starting: ['active', 'ending'],
  active: ['ending'],
  ending: ['ended'],
  ended: [],
};

/** The timeline stage a state stamps when entered (the others stamp none). */
const STATE_STAGE: Partial<Record<CallState, TimelineStage>> = { queued: 'queued', active: 'worker_assigned', ended: 'ended' };

const MAX_BOT_EVENTS = 500;
const MAX_TURNS = 200;

/** The call's data, as the dashboard, metrics, records and tests read it (only `Call` writes it). */
export interface CallRecord extends CallIdentity {
  state: CallState;
  /** Epoch ms per stage. */
  timeline: Timeline;
  warmStart?: boolean;
  /** `warm`: the call took a warm slot (room and bot ready before the call); `cold`: a room per call. */
  path?: CallPath;
  workerPid?: number;
  outcome?: Outcome;
  detail?: string;
  botEvents: BotEvent[];
  /** The bot's version (declared, else the hash of its files): as its worker loaded it, or as known at admission. */
  botVersion?: string;
  /** The last `dialin.error` Daily reported for this call's room (domain webhook), if any. */
  dialinError?: string;
  /** The call's OpenTelemetry trace id, when tracing is on. */
  traceId?: string;
  /** Fleet mode: the replica that runs (or ran) the call. */
  replica?: string;
  /** Failures before forwarding and what was done about each (src/workers/parent/fallback.ts). */
  recovery?: RecoveryStep[];
  /** The timed turns of the conversation (src/core/turn-timing.ts), in order; bounded per call. */
  turns?: TurnTiming[];
}

/** A pre-forward failure handled without giving up on the caller. */
export interface RecoveryStep {
  /** `retry`: on a fresh worker; `fallback_sip`: forwarded to FALLBACK_SIP_URI; `apology`: the built-in apology bot. */
  kind: 'retry' | 'fallback_sip' | 'apology';
  /** The failure it answered. */
  after: Outcome;
  detail?: string;
  atMs: number;
}

export interface CallTransition {
  call: Call;
  from: CallState;
  to: CallState;
  atMs: number;
}

export interface CallEvents {
  transition: [CallTransition];
  changed: [Call];
}

export class IllegalTransitionError extends PatchbayError {
  override name = 'IllegalTransitionError';
  constructor(id: string, from: CallState, to: CallState) {
    super('illegal_transition', `call ${id}: ${from} → ${to} is not an allowed transition`, { retryable: false });
  }
}

export class Call extends EventEmitter<CallEvents> {
  readonly record: CallRecord;
  /** The call's child logger: callId, id, bot, traceId (and pid once it has a worker). */
  log: Logger;
  readonly trace: CallTrace;
  private readonly claims: OutcomeClaim[] = [];
  private hangupWorker: ((outcome: Outcome) => void) | undefined;
  private workerReported = false;

  constructor(
    identity: CallIdentity,
    opts: { receivedAtMs: number; logger: Logger; replica?: string | undefined; path?: CallPath; botVersion?: string | undefined },
  ) {
    super();
    this.trace = new CallTrace(identity, opts.receivedAtMs);
    this.record = {
      ...identity,
      state: 'admitting',
      path: opts.path ?? 'cold',
      timeline: { received: opts.receivedAtMs },
      botEvents: [],
      ...(opts.botVersion ? { botVersion: opts.botVersion } : {}),
      ...(this.trace.traceId ? { traceId: this.trace.traceId } : {}),
      ...(opts.replica ? { replica: opts.replica } : {}),
    };
    this.log = opts.logger.child({
      callId: identity.callId,
      id: identity.id,
      bot: identity.bot,
      ...(this.trace.traceId ? { traceId: this.trace.traceId } : {}),
    });
  }

  get id(): string {
    return this.record.id;
  }

  get state(): CallState {
    return this.record.state;
  }

  get outcome(): Outcome | undefined {
    return this.record.outcome;
  }

  /** True once the worker reported its outcome (`done`): it is finishing the call by itself. */
  get workerDone(): boolean {
    return this.workerReported;
  }

  /** True while a worker runs the call (the only state in which `end()` can hang up on it). */
  get hasWorker(): boolean {
    return this.hangupWorker !== undefined;
  }

  /** The one state setter: validates against CALL_TRANSITIONS, stamps the timeline, emits `transition`. */
  advance(to: CallState, atMs = Date.now()): void {
    const from = this.record.state;
    if (!CALL_TRANSITIONS[from].includes(to)) throw new IllegalTransitionError(this.id, from, to);
    this.record.state = to;
    const stage = STATE_STAGE[to];
    if (stage) this.record.timeline[stage] = atMs;
    this.trace.event(`state.${to}`, atMs);
    this.emit('transition', { call: this, from, to, atMs });
  }

  roomCreated(roomUrl: string, atMs = Date.now()): void {
    this.record.roomUrl = roomUrl;
    this.stamp('room_created', atMs);
  }

  /**
   * The call runs in a warm slot's room instead of the room made at admission (fleet mode: the
   * replica that took it from the queue had a warm slot). Only before a worker has it.
   */
  movedToWarmRoom(roomName: string, roomUrl: string): void {
    if (this.hasWorker || (this.record.state !== 'admitting' && this.record.state !== 'queued'))
      throw new Error(`call ${this.id}: cannot change rooms in state ${this.record.state}`);
    this.log.info({ from: this.record.roomName, to: roomName }, 'the call takes a warm room');
    this.record.roomName = roomName;
    this.record.roomUrl = roomUrl;
    this.record.path = 'warm';
  }

  /**
   * A worker took the call: `hangup` asks it to end the call (used by `end()` claims of others).
   * Again for a retry on a fresh worker (nothing was forwarded yet): the call stays `active`.
   */
  workerAssigned(w: { pid: number; warmStart: boolean; hangup: (outcome: Outcome) => void }): void {
    this.record.warmStart = w.warmStart;
    this.record.workerPid = w.pid;
    this.hangupWorker = w.hangup;
    this.workerReported = false;
    this.log = this.log.child({ pid: w.pid });
    if (this.record.state !== 'active') this.advance('active');
  }

  /** True once an `end()` claim (decided or requested) was made: no retry, no fallback. */
  get endRequested(): boolean {
    return this.claims.length > 0;
  }

  /** The worker said its last word (`done`); its outcome arrives through the worker's result: `end`. */
  noteWorkerReported(): void {
    this.workerReported = true;
  }

  /** Something the bot did (a kind from BOT_EVENT_KINDS); bounded per call. */
  botEvent(kind: string, value: string, atMs: number): void {
    if (this.record.botEvents.length >= MAX_BOT_EVENTS) return;
    this.record.botEvents.push({ kind, value, atMs });
    this.trace.event(`bot.${kind}`, atMs);
    this.emit('changed', this);
  }

  /** A finished turn's latency: kept, a span of the trace, an entry of the event log (records, dashboard). */
  turnTimed(wire: unknown): void {
    const t = checkedTurn(wire);
    const turns = (this.record.turns ??= []);
    if (!t || turns.length >= MAX_TURNS) return;
    turns.push(t);
    this.trace.turn(t);
    this.botEvent(TURN_EVENT_KIND, encodeTurn(t), t.atMs);
  }

  /** The version of the bot the call's worker loaded (it wins over the one known at admission). */
  botVersioned(version: string): void {
    if (this.record.botVersion === version) return;
    this.record.botVersion = version;
    this.emit('changed', this);
  }

  noteRecovery(step: RecoveryStep): void {
    (this.record.recovery ??= []).push(step);
    this.trace.event(`recovery.${step.kind}`, step.atMs);
    this.log.warn({ recovery: step.kind, after: step.after, detail: step.detail }, 'call failed before forwarding; recovering');
    this.emit('changed', this);
  }

  noteDialinError(message: string): void {
    this.record.dialinError = message;
    this.trace.event('dialin.error', Date.now());
    this.emit('changed', this);
  }

  /**
   * Claims an outcome. The first definitive claim decides it (the call moves to `ending`); a
   * request, or any later claim, only adds to `detail` (src/core/outcome.ts `END_CLAIMS`). A claim
   * by anyone but the worker or its supervisor asks the worker (if any) to end the call. Returns
   * true when this claim decided the outcome.
   */
  end(outcome: Outcome, detail: string | undefined, by: EndClaimer): boolean {
    if (this.record.state === 'ended') {
      this.log.debug({ outcome, by }, 'outcome claimed after the call ended; ignored');
      return false;
    }
    const decidedBefore = this.record.outcome !== undefined;
    this.claims.push({ outcome, detail, by });
    const settled = settleOutcome(this.claims);
    if (by !== 'worker' && by !== 'supervisor' && this.hangupWorker) this.hangupWorker(settled?.outcome ?? outcome);
    if (!settled) return false;
    this.record.outcome = settled.outcome;
    if (settled.detail === undefined) delete this.record.detail;
    else this.record.detail = settled.detail;
    if (decidedBefore) {
      this.emit('changed', this);
      return false;
    }
    this.advance('ending');
    return true;
  }

  /** The last transition, once the worker is reaped and the room released: one "call ended" line. */
  finish(): void {
    if (this.record.outcome === undefined) {
      // Only requests were made (e.g. the worker vanished without a word after a drain request).
      const settled = settleOutcome(this.claims, true) ?? {
        outcome: 'worker_crashed' as const,
        detail: 'ended without an outcome',
        by: 'supervisor' as const,
      };
      this.end(settled.outcome, settled.detail, 'supervisor');
    }
    this.hangupWorker = undefined;
    this.advance('ended');
    const r = this.record;
    this.trace.end(r.timeline, r.outcome!);
    const t0 = r.timeline.received ?? 0;
    const timelineMs: Record<string, number> = {};
    for (const [k, v] of Object.entries(r.timeline)) timelineMs[k] = v - t0;
    const level = GOOD_OUTCOMES.includes(r.outcome!) ? 'info' : 'warn';
    this.log[level](
      {
        outcome: r.outcome,
        detail: r.detail,
        from: maskNumber(r.from),
        to: r.to,
        room: r.roomName,
        warmStart: r.warmStart,
        path: r.path,
        timelineMs,
        holdAddedMs: r.timeline.forward_sent !== undefined ? r.timeline.forward_sent - t0 : undefined,
      },
      'call ended',
    );
  }

  /** A timeline stage, stamped once (the first time wins). */
  stamp(stage: TimelineStage, atMs: number): void {
    if (this.record.timeline[stage] !== undefined) return;
    this.record.timeline[stage] = atMs;
    this.trace.event(`stage.${stage}`, atMs);
    this.emit('changed', this);
  }
}
