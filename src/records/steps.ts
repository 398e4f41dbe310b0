/**
 * A call's steps (`call.step(name)` in the bot: `step` events of its record), as the rows of the
 * `call_steps` table the funnels read (docs/bots.md, "Steps and funnels"). One row per call and
 * step, written once, when the call's record is closed: when it first entered the step, how long it
 * spent in it over all its visits (a step lasts until the next one, the last until the call's end),
 * whether it was the call's last step, the call's outcome, and whether a transfer began in it.
 */
import type { RecordEvent } from './types.js';

/** One row of `call_steps`. `bot`, `bot_version`, `received_at_ms`, `outcome`: the call's (the funnel's filters). */
export interface StepRow {
  call_id: string;
  step: string;
  bot: string;
  bot_version: string;
  received_at_ms: number;
  /** First entry, ms after the call was received (orders steps of equal reach). */
  entered_ms: number;
  /** Time spent in the step, all visits. */
  spent_ms: number;
  visits: number;
  /** 1: the call's last step. */
  is_last: number;
  outcome: string;
  /** Transfers (blind or warm) the bot began while in the step. */
  transfers: number;
}

export const STEP_FIELDS = [
  'call_id',
  'step',
  'bot',
  'bot_version',
  'received_at_ms',
  'entered_ms',
  'spent_ms',
  'visits',
  'is_last',
  'outcome',
  'transfers',
] as const satisfies ReadonlyArray<keyof StepRow>;

/** What `stepRowsOf` needs of a closed call. */
export interface ClosedCall {
  id: string;
  bot: string;
  botVersion: string | null;
  receivedAtMs: number;
  endedAtMs: number;
  outcome: string;
  events: readonly RecordEvent[];
}

/** The call's steps as rows (none when its bot marked no step). */
export function stepRowsOf(c: ClosedCall): StepRow[] {
  const rows = new Map<string, StepRow>();
  let current: { row: StepRow; since: number } | undefined;
  const leave = (atMs: number) => {
    if (current) current.row.spent_ms += Math.max(0, atMs - current.since);
  };
  const events = [...c.events].sort((a, b) => a.atMs - b.atMs);
  for (const e of events) {
    if (e.kind === 'transfer' && current) {
      current.row.transfers++;
      continue;
    }
    if (e.kind !== 'step') continue;
    leave(e.atMs);
    let row = rows.get(e.value);
    if (!row) {
      row = {
        call_id: c.id,
        step: e.value,
        bot: c.bot,
        bot_version: c.botVersion ?? '',
        received_at_ms: c.receivedAtMs,
        entered_ms: Math.max(0, e.atMs - c.receivedAtMs),
        spent_ms: 0,
        visits: 0,
        is_last: 0,
        outcome: c.outcome,
        transfers: 0,
      };
      rows.set(e.value, row);
    }
    row.visits++;
    current = { row, since: e.atMs };
  }
  if (current) {
    leave(Math.max(c.endedAtMs, current.since));
    current.row.is_last = 1;
  }
  return [...rows.values()];
}
