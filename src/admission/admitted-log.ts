/**
 * Admitted call ids, durable across a restart (kill -9 included) for at least SIGNATURE_WINDOW_MS:
 * a signed webhook replayed to the restarted service is recognised and answered like a duplicate,
 * and starts nothing. An append-only JSON-lines file next to the call records; read and pruned at
 * start-up, compacted while running. One short synchronous append per admitted call (page cache:
 * survives the process dying; a machine crash may lose the last lines).
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PinlessCall } from '../daily/types.js';
import type { CallRecord } from '../call/call.js';

export interface AdmittedEntry {
  callId: string;
  /** Our call id and its room URL: what the first answer said. */
  id: string;
  roomUrl: string;
  atMs: number;
}

export class AdmittedLog {
  private readonly entries = new Map<string, AdmittedEntry>();
  private appendedSinceCompaction = 0;

  private constructor(
    private readonly file: string | undefined,
    private readonly keepMs: number,
    private readonly log: Logger,
  ) {}

  /** Opens (and prunes) `file`; undefined → memory only. A corrupt line is skipped, never fatal. */
  static open(file: string | undefined, keepMs: number, logger: Logger, now = Date.now()): AdmittedLog {
    const a = new AdmittedLog(file, keepMs, logger.child({ component: 'admitted-log' }));
    if (!file) return a;
    mkdirSync(path.dirname(file), { recursive: true });
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let skipped = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const e = JSON.parse(line) as Partial<AdmittedEntry>;
        if (typeof e.callId !== 'string' || typeof e.id !== 'string' || typeof e.roomUrl !== 'string' || typeof e.atMs !== 'number')
          throw new Error('bad entry');
        if (e.atMs > now - keepMs) a.entries.set(e.callId, e as AdmittedEntry);
      } catch {
        skipped++;
      }
    }
    a.compact(now);
    a.log.info({ file, kept: a.entries.size, skipped }, 'admitted call ids loaded');
    return a;
  }

  get(callId: string, now = Date.now()): AdmittedEntry | undefined {
    const e = this.entries.get(callId);
    return e && e.atMs > now - this.keepMs ? e : undefined;
  }

  add(e: AdmittedEntry): void {
    this.entries.set(e.callId, e);
    if (!this.file) return this.pruneMemory(e.atMs);
    try {
      appendFileSync(this.file, `${JSON.stringify(e)}\n`);
    } catch (err) {
      this.log.error({ err, file: this.file }, 'could not record an admitted call id; a replay after a restart would not be recognised');
    }
    if (++this.appendedSinceCompaction > Math.max(1_000, this.entries.size)) this.compact(e.atMs);
  }

  private pruneMemory(now: number): void {
    if (this.entries.size < 10_000) return;
    for (const [k, v] of this.entries) if (v.atMs <= now - this.keepMs) this.entries.delete(k);
  }

  /** Drops expired entries and rewrites the file (temp file + rename: never a half-written log). */
  private compact(now: number): void {
    for (const [k, v] of this.entries) if (v.atMs <= now - this.keepMs) this.entries.delete(k);
    this.appendedSinceCompaction = 0;
    if (!this.file) return;
    const tmp = `${this.file}.tmp`;
    try {
      writeFileSync(tmp, [...this.entries.values()].map((e) => `${JSON.stringify(e)}\n`).join(''));
      renameSync(tmp, this.file);
    } catch (err) {
      this.log.error({ err, file: this.file }, 'could not compact the admitted call ids');
    }
  }
}

/** The answer to a webhook admitted before a restart: the same id and room, and nothing started. */
export function admittedBefore(p: PinlessCall, e: AdmittedEntry): CallRecord {
  const { callId, callDomain, from, to, sipHeaders } = p;
  return {
    id: e.id,
    callId,
    callDomain,
    from,
    to,
    sipHeaders,
    bot: '',
    roomName: '',
    roomUrl: e.roomUrl,
    state: 'ended',
    timeline: { received: e.atMs },
    botEvents: [],
  };
}
