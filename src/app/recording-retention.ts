/**
 * RECORDING_RETENTION_DAYS (docs/operations.md, "Recording"): recordings older than that are
 * deleted, Daily's and the local files alike — Daily's through `DELETE /recordings/:id` (their
 * access links stop working with them), only those of patchbay's rooms (`pb-…`, src/daily/leftovers.ts),
 * never another application's on a shared domain; local `.wav` files under RECORDINGS_DIR by their
 * last write. Background work: listings and deletions are in Daily's `delete` class, behind the call path.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { DailyRestClient } from '../daily/rest.js';
import { errorMessage } from '../core/errors.js';

const DAY_MS = 86_400_000;
/** How often the sweep runs. */
export const RETENTION_SWEEP_MS = 3_600_000;

export interface RetentionOptions {
  days: number;
  /** Daily's recordings (undefined: local files only). */
  daily?: DailyRestClient;
  dir: string;
  logger: Logger;
}

/** One sweep; returns what it deleted. Never throws (a failure is logged; the next sweep tries again). */
export async function sweepRecordings(o: RetentionOptions, nowMs = Date.now()): Promise<{ daily: string[]; local: string[] }> {
  const cutoffMs = nowMs - o.days * DAY_MS;
  const out = { daily: [] as string[], local: [] as string[] };
  if (o.daily) {
    try {
      for (const r of await o.daily.listRecordings({ limit: 100 })) {
        if (!r.room_name.startsWith('pb-') || r.status === 'in-progress' || r.start_ts * 1000 >= cutoffMs) continue;
        await o.daily.deleteRecording(r.id);
        out.daily.push(r.id);
      }
    } catch (err) {
      o.logger.warn({ err: errorMessage(err) }, 'recording retention: Daily recordings not swept');
    }
  }
  const names = await readdir(o.dir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith('.wav'))) {
    const file = path.join(o.dir, name);
    try {
      if ((await stat(file)).mtimeMs >= cutoffMs) continue;
      await unlink(file);
      out.local.push(name);
    } catch (err) {
      o.logger.warn({ err: errorMessage(err), file }, 'recording retention: file not deleted');
    }
  }
  if (out.daily.length + out.local.length > 0)
    o.logger.info({ daily: out.daily.length, local: out.local.length }, 'old recordings deleted');
  return out;
}

/** Sweeps now and every RETENTION_SWEEP_MS until `signal` aborts. */
export function startRecordingRetention(o: RetentionOptions, signal: AbortSignal): void {
  const run = () => void sweepRecordings(o);
  run();
  const t = setInterval(run, RETENTION_SWEEP_MS);
  t.unref();
  signal.addEventListener('abort', () => clearInterval(t), { once: true });
}
