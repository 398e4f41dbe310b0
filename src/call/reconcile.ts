/**
 * Reconciliation with Daily's domain webhooks (POST /webhooks/daily): finds the call an event is
 * about (by its room) and asks it to end. `dialin.error` is recorded on the call; `dialin.stopped`
 * / `meeting.ended` end a call that is still live `DAILY_WEBHOOK_RECONCILE_GRACE_MS` later (the
 * worker normally notices first, through its call client), so a lost event or a wedged worker
 * cannot hold a slot. The outcome competes with the worker's by src/core/outcome.ts `END_CLAIMS`.
 */
import type { Logger } from 'pino';
import type { Outcome } from '../core/outcome.js';
import type { Call } from './call.js';

/** A verified Daily domain event, as the webhook route hands it over. */
export interface DomainEventInput {
  /** `dialin.stopped`, `meeting.ended`, `dialin.error`, … */
  type: string;
  id: string;
  /** The room the event is about (`payload.room`). */
  room: string | undefined;
  /** `payload.error_msg` / `payload.warning_msg`, when present. */
  message?: string;
}

export type ReconcileAction = 'ignored' | 'unknown_room' | 'recorded' | 'end_scheduled' | 'ended';

export interface ReconcilerDeps {
  /** The live call in this room, if any. */
  findByRoom(roomName: string): Call | undefined;
  graceMs: number;
  logger: Logger;
}

const HANDLED = ['dialin.stopped', 'meeting.ended', 'dialin.error'];

export class Reconciler {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly deps: ReconcilerDeps) {}

  reconcile(ev: DomainEventInput): { action: ReconcileAction; id?: string } {
    if (!HANDLED.includes(ev.type)) return { action: 'ignored' };
    const call = ev.room === undefined ? undefined : this.deps.findByRoom(ev.room);
    if (!call) return { action: 'unknown_room' };
    if (ev.type === 'dialin.error') {
      call.noteDialinError(ev.message ?? 'dialin.error (no message)');
      call.log.warn({ event: ev.type, eventId: ev.id, error: call.record.dialinError }, 'Daily reported a dial-in error for this call');
      return { action: 'recorded', id: call.id };
    }
    // Still waiting for a bot (queued, or no worker yet): nobody else will notice the caller left. End it now.
    if (ev.type === 'dialin.stopped' && !call.hasWorker && (call.state === 'queued' || call.state === 'starting')) {
      call.log.warn({ event: ev.type, eventId: ev.id, state: call.state }, 'the caller left while the call waited for a bot: dropping it');
      call.end('caller_hangup_on_hold', `${ev.type} webhook (event ${ev.id}) while ${call.state}`, 'reconcile');
      return { action: 'ended', id: call.id };
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.endIfStillLive(call, ev);
    }, this.deps.graceMs);
    timer.unref();
    this.timers.add(timer);
    return { action: 'end_scheduled', id: call.id };
  }

  private endIfStillLive(call: Call, ev: DomainEventInput): void {
    const r = call.record;
    if (r.outcome !== undefined || r.state === 'ended') return;
    // The worker saw it too and is finishing the call: nothing to reconcile.
    if (call.workerDone || (ev.type === 'dialin.stopped' && r.timeline.caller_left !== undefined)) return;
    // A call in recovery (a fresh worker or the apology bot took over: fallback.ts) has rejoined its
    // room, starting a new meeting: a `meeting.ended` is the previous worker's.
    if (ev.type === 'meeting.ended' && (r.recovery?.length ?? 0) > 0) return;
    if (!call.hasWorker) {
      call.log.warn(
        { event: ev.type, eventId: ev.id, state: r.state },
        'domain event for a call without a worker yet; left to the call deadlines',
      );
      return;
    }
    const outcome: Outcome = r.dialinError
      ? 'dialin_error'
      : ev.type === 'meeting.ended'
        ? 'bot_removed'
        : r.timeline.connected !== undefined
          ? 'caller_hangup'
          : 'caller_hangup_on_hold';
    const graceMs = this.deps.graceMs;
    const detail = `${ev.type} webhook (event ${ev.id}); the call was still live ${graceMs} ms later${r.dialinError ? `; dialin.error: ${r.dialinError}` : ''}`;
    call.log.warn(
      { event: ev.type, eventId: ev.id, outcome, graceMs },
      'Daily says the call is over but its worker has not ended it: ending it',
    );
    call.end(outcome, detail, 'reconcile');
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
