/**
 * A call's recording as its record tells it: read from the `recording` entries of its event log
 * (src/workers/child/call-recording.ts writes them), so no column or migration is needed, and
 * `/calls`, its CSV and the dashboard agree.
 */
import type { RecordEvent } from './types.js';

export interface RecordingSummary {
  /** `off` (never asked), `requested`, `recording`, `paused`, `stopped`, `failed` (asked, never started). */
  state: 'off' | 'requested' | 'recording' | 'paused' | 'stopped' | 'failed' | 'opted_out';
  /** How it was asked for: Daily's cloud recording (one file per segment) or a local WAV (one file, silence in pauses); null when never asked. */
  mode: 'daily' | 'local' | null;
  /** Daily's recording id(s), or the local file name(s). */
  ids: string[];
  /** Recorded stretches, epoch ms (`endMs` null while recording). */
  segments: Array<{ startMs: number; endMs: number | null }>;
  /** The errors reported (refused starts, recording-error). */
  errors: string[];
  /** PCI pauses (sensitive input), epoch ms: the gaps of the recording. */
  pauses: Array<{ startMs: number; endMs: number | null }>;
}

export function recordingSummary(events: readonly RecordEvent[]): RecordingSummary {
  const out: RecordingSummary = { state: 'off', mode: null, ids: [], segments: [], errors: [], pauses: [] };
  const openSegment = (atMs: number) => {
    const last = out.segments.at(-1);
    if (!last || last.endMs !== null) out.segments.push({ startMs: atMs, endMs: null });
  };
  const closeSegment = (atMs: number) => {
    const last = out.segments.at(-1);
    if (last && last.endMs === null) last.endMs = atMs;
  };
  for (const e of events) {
    if (e.kind !== 'recording') continue;
    const [verb = '', ...rest] = e.value.split(' ');
    const arg = rest.join(' ');
    if (verb === 'requested') {
      if (out.state === 'off') out.state = 'requested';
      out.mode = arg === 'local' ? 'local' : 'daily';
    } else if (verb === 'id' && arg && !out.ids.includes(arg)) out.ids.push(arg);
    else if (verb === 'started') {
      out.state = 'recording';
      if (arg && !out.ids.includes(arg)) out.ids.push(arg);
      openSegment(e.atMs);
    } else if (verb === 'stopped') {
      if (out.state !== 'paused') out.state = 'stopped';
      closeSegment(e.atMs);
    } else if (verb === 'paused') {
      out.state = 'paused';
      closeSegment(e.atMs);
      out.pauses.push({ startMs: e.atMs, endMs: null });
    } else if (verb === 'resumed') {
      out.state = 'recording';
      const p = out.pauses.at(-1);
      if (p && p.endMs === null) p.endMs = e.atMs;
      // Daily's next segment opens with its `started`; a local file goes on at once.
      if (out.mode === 'local') openSegment(e.atMs);
    } else if (verb === 'opted-out') {
      out.state = 'opted_out';
    } else if (verb === 'error') {
      out.errors.push(arg);
      if (out.state === 'requested') out.state = 'failed';
    }
  }
  return out;
}

/** `recording paused 12.4–31.0 s` per pause, seconds from `originMs`. */
export function pausesText(s: RecordingSummary, originMs: number): string {
  const sec = (ms: number) => ((ms - originMs) / 1000).toFixed(1);
  return s.pauses.map((p) => `recording paused ${sec(p.startMs)}–${p.endMs === null ? '' : sec(p.endMs)} s`).join('; ');
}

/** `12.4–31.0` seconds from `originMs`, for CSV and logs. */
export function segmentsText(s: RecordingSummary, originMs: number): string {
  const sec = (ms: number) => ((ms - originMs) / 1000).toFixed(1);
  return s.segments.map((g) => `${sec(g.startMs)}-${g.endMs === null ? '' : sec(g.endMs)}`).join(' ');
}
