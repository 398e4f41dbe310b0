/**
 * A call's recording as its record tells it: read from the `recording` entries of its event log
 * (src/workers/child/call-recording.ts writes them), so no column or migration is needed, and
 * `/calls`, its CSV and the dashboard agree.
 */
import type { RecordEvent } from './types.js';

export interface RecordingSummary {
  /** `off` (never asked), `requested`, `recording`, `stopped`, `failed` (asked, never started). */
  state: 'off' | 'requested' | 'recording' | 'stopped' | 'failed';
  /** Daily's recording id(s), or the local file name(s). */
  ids: string[];
  /** Recorded stretches, epoch ms (`endMs` null while recording). */
  segments: Array<{ startMs: number; endMs: number | null }>;
  /** The errors reported (refused starts, recording-error). */
  errors: string[];
}

export function recordingSummary(events: readonly RecordEvent[]): RecordingSummary {
  const out: RecordingSummary = { state: 'off', ids: [], segments: [], errors: [] };
  for (const e of events) {
    if (e.kind !== 'recording') continue;
    const [verb = '', ...rest] = e.value.split(' ');
    const arg = rest.join(' ');
    const open = out.segments.at(-1);
    if (verb === 'requested' && out.state === 'off') out.state = 'requested';
    else if (verb === 'id' && arg && !out.ids.includes(arg)) out.ids.push(arg);
    else if (verb === 'started') {
      out.state = 'recording';
      if (arg && !out.ids.includes(arg)) out.ids.push(arg);
      if (!open || open.endMs !== null) out.segments.push({ startMs: e.atMs, endMs: null });
    } else if (verb === 'stopped') {
      out.state = 'stopped';
      if (open && open.endMs === null) open.endMs = e.atMs;
    } else if (verb === 'error') {
      out.errors.push(arg);
      if (out.state === 'requested') out.state = 'failed';
    }
  }
  return out;
}

/** `12.4–31.0` seconds from `originMs`, for CSV and logs. */
export function segmentsText(s: RecordingSummary, originMs: number): string {
  const sec = (ms: number) => ((ms - originMs) / 1000).toFixed(1);
  return s.segments.map((g) => `${sec(g.startMs)}-${g.endMs === null ? '' : sec(g.endMs)}`).join(' ');
}
