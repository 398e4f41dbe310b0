import { createReadStream, type ReadStream } from 'node:fs';

/** HTTP byte ranges (RFC 9110 §14), for files served with `Range` support: the dashboard's recordings and the emulator's downloads. */
export type ByteRange = { start: number; end: number } | 'whole' | 'unsatisfiable';

/**
 * An HTTP `Range` header against a file of `size` bytes (RFC 9110 §14): one `bytes=` range →
 * inclusive `start`–`end`; no header, another unit, several ranges or a malformed one → `whole` (a
 * server may ignore Range); a range that starts past the end → `unsatisfiable` (416).
 */
export function parseRange(header: string | undefined, size: number): ByteRange {
  const m = /^bytes=(\d*)-(\d*)$/.exec((header ?? '').trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'whole';
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return 'whole';
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** What to answer for a file served with Range support: its status, headers and body (none for 416). */
export interface RangeAnswer {
  status: 200 | 206 | 416;
  headers: Record<string, string | number>;
  body?: ReadStream;
}

/** The answer to a `Range` header (parseRange) for the file at `file` of `size` bytes. */
export function fileRangeAnswer(file: string, size: number, rangeHeader: string | undefined): RangeAnswer {
  const r = parseRange(rangeHeader, size);
  if (r === 'unsatisfiable') return { status: 416, headers: { 'content-range': `bytes */${size}` } };
  if (r === 'whole') return { status: 200, headers: { 'content-length': size }, body: createReadStream(file) };
  return {
    status: 206,
    headers: { 'content-range': `bytes ${r.start}-${r.end}/${size}`, 'content-length': r.end - r.start + 1 },
    body: createReadStream(file, { start: r.start, end: r.end }),
  };
}
