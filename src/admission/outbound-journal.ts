/**
 * Outbound calls outlive a restart (docs/outbound.md): every change of an outbound call is one JSON
 * line in `<data dir>/outbound-calls.jsonl` (the admitted log's directory), the latest line of an id
 * winning. At start-up the file is read and compacted: calls still due (queued, or waiting to try
 * again) are queued again with their idempotency keys; a call whose attempt was in flight when the
 * process stopped is not dialled again (it may have been answered: never twice) and ends `failed`.
 * Ended calls are kept for GET /calls/:id and their keys for KEEP_MS.
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import type { JournalEntry } from './outbound-types.js';

export type { JournalEntry } from './outbound-types.js';

/** Ended calls are forgotten (their keys too) this long after they were created. */
const KEEP_MS = 7 * 24 * 3_600_000;

export class OutboundJournal {
  private constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  /** The journal next to the admitted log, or undefined (records in memory: nothing outlives the process). */
  static open(admittedPath: string | undefined, log: Logger): { journal: OutboundJournal; entries: JournalEntry[] } | undefined {
    if (!admittedPath) return undefined;
    const file = path.join(path.dirname(admittedPath), 'outbound-calls.jsonl');
    mkdirSync(path.dirname(file), { recursive: true });
    const journal = new OutboundJournal(file, log);
    const entries = journal.load();
    return { journal, entries };
  }

  /** The latest line of each id, compacted back to the file; in-flight attempts end here. */
  private load(): JournalEntry[] {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return [];
    }
    const byId = new Map<string, JournalEntry>();
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const e = JSON.parse(line) as JournalEntry;
        if (typeof e?.view?.id === 'string') byId.set(e.view.id, e);
      } catch {
        this.log.warn({ file: this.file }, 'outbound journal: an unreadable line skipped (a write cut short)');
      }
    }
    const now = Date.now();
    const kept = [...byId.values()].filter((e) => e.view.status !== 'ended' || now - e.view.createdAtMs < KEEP_MS);
    for (const e of kept) interruptInFlight(e);
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, kept.map((e) => JSON.stringify(e) + '\n').join(''));
    renameSync(tmp, this.file);
    return kept;
  }

  write(e: JournalEntry): void {
    try {
      appendFileSync(this.file, JSON.stringify(e) + '\n');
    } catch (err) {
      this.log.error({ file: this.file, err: errorMessage(err) }, 'outbound journal: write failed');
    }
  }
}

/** An attempt was dialling or talking when the process stopped: it ends, never dialled again. */
function interruptInFlight(e: JournalEntry): void {
  const v = e.view;
  if (v.status === 'ended' || v.status === 'queued') return;
  // Waiting to try again after busy / no-answer: still due.
  if ((v.status === 'busy' || v.status === 'no-answer') && v.nextAttemptAtMs !== null) return;
  v.result = v.status === 'dialing' ? 'failed' : v.status;
  v.detail = `${v.detail ? `${v.detail}; ` : ''}interrupted by a restart during attempt ${v.attempts}; not placed again`;
  v.history.push({ status: 'ended', atMs: Date.now(), attempt: v.attempts });
  v.status = 'ended';
}
