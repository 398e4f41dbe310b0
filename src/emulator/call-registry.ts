/** Every emulated call, by emulator id and by Daily callId; ended ones are kept for inspection, up to a bound. */
import type { CallImpl } from './call.js';
import type { Timers } from './timers.js';

/** Ended calls kept for inspection (control API, snapshot, tests). */
const MAX_ENDED_CALLS = 1_000;

export class CallRegistry {
  private readonly byId = new Map<string, CallImpl>();
  private readonly byCallId = new Map<string, CallImpl>();
  /** Ids of ended calls, oldest first (for pruning). */
  private readonly ended: string[] = [];

  constructor(private readonly timers: Timers) {}

  add(call: CallImpl): void {
    this.byId.set(call.id, call);
    this.byCallId.set(call.callId, call);
  }

  get(id: string): CallImpl | undefined {
    return this.byId.get(id);
  }

  getByCallId(callId: string): CallImpl | undefined {
    return this.byCallId.get(callId);
  }

  values(): IterableIterator<CallImpl> {
    return this.byId.values();
  }

  /** Ends every live call patched (or being patched) into `roomName`. */
  endBoundFor(roomName: string): void {
    for (const call of this.byId.values()) {
      if (call.roomName === roomName && call.state !== 'ended') call.end('room_closed');
    }
  }

  /** A call ended: forget the oldest ended calls beyond MAX_ENDED_CALLS (a long-running embedded emulator must not grow). */
  noteEnded(call: CallImpl): void {
    this.ended.push(call.id);
    this.timers.after(0, () => {
      while (this.ended.length > MAX_ENDED_CALLS) {
        const id = this.ended.shift()!;
        const c = this.byId.get(id);
        if (!c) continue;
        this.byId.delete(id);
        this.byCallId.delete(c.callId);
      }
    });
  }
}
