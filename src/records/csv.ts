/**
 * CSV export of stored calls (RFC 4180): fields with commas, quotes, CR or LF are quoted, quotes
 * doubled; a field that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`,
 * tab or CR) is prefixed with `'` so it is shown as text.
 */
import type { StoredCall } from './types.js';
import { pausesText, recordingSummary, segmentsText } from './recording.js';

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvField(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_COLUMNS = [
  'id',
  'callId',
  'callDomain',
  'from',
  'to',
  'bot',
  'roomName',
  'state',
  'outcome',
  'detail',
  'receivedAt',
  'endedAt',
  'durationMs',
  'warmStart',
  'workerPid',
  'replicaId',
  'traceId',
  'path',
  'botVersion',
  'timeline',
  'events',
  'recordingMode',
  'recordingErrors',
  'recordingState',
  'recordingIds',
  'recordingSegments',
  'recordingPauses',
  'turns',
  'turnP50Ms',
  'turnP95Ms',
] as const;

const iso = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString());

export function csvRow(c: StoredCall): string {
  const rec = recordingSummary(c.events);
  const values: Record<(typeof CSV_COLUMNS)[number], unknown> = {
    ...c,
    recordingMode: rec.mode ?? '',
    recordingErrors: rec.errors.join('; '),
    recordingState: rec.state,
    recordingIds: rec.ids.join(' '),
    // Seconds from the call's arrival.
    recordingSegments: segmentsText(rec, c.receivedAtMs),
    recordingPauses: pausesText(rec, c.receivedAtMs),
    turns: c.turnLatency?.turns ?? 0,
    turnP50Ms: c.turnLatency?.p50Ms,
    turnP95Ms: c.turnLatency?.p95Ms,
    receivedAt: iso(c.receivedAtMs),
    endedAt: iso(c.endedAtMs),
  };
  return CSV_COLUMNS.map((k) => csvField(values[k])).join(',');
}

export function toCsv(calls: StoredCall[]): string {
  return [CSV_COLUMNS.join(','), ...calls.map(csvRow)].join('\r\n') + '\r\n';
}
