/** The outbound journal (src/admission/outbound-journal.ts) on a real file: what a restart finds. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { OutboundJournal, type JournalEntry } from '../../src/admission/outbound-journal.js';
import type { OutboundStatus } from '../../src/admission/outbound.js';

const log = createLogger({ level: 'silent', name: 'test' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function entry(id: string, status: OutboundStatus, nextAttemptAtMs: number | null = null, key?: string): JournalEntry {
  return {
    view: {
      id,
      direction: 'outbound',
      status,
      result: null,
      outcome: null,
      detail: null,
      to: '+15550000000',
      from: null,
      bot: 'b',
      metadata: {},
      attempts: status === 'queued' ? 0 : 1,
      callIds: [],
      createdAtMs: Date.now(),
      notBeforeMs: null,
      nextAttemptAtMs,
      history: [{ status, atMs: Date.now(), attempt: 1 }],
    },
    req: { to: { phoneNumber: '+15550000000' }, bot: 'b' },
    dueAtMs: Date.now(),
    ...(key ? { key } : {}),
  };
}

describe('outbound journal', () => {
  it('keeps due calls; an attempt in flight at the stop ends failed and is never dialled again; the latest line wins', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pb-journal-'));
    dirs.push(dir);
    const admitted = path.join(dir, 'admitted-calls.jsonl');
    const first = OutboundJournal.open(admitted, log)!;
    expect(first.entries).toEqual([]);
    first.journal.write(entry('a', 'queued', null, 'k1'));
    first.journal.write(entry('b', 'queued'));
    first.journal.write(entry('b', 'dialing'));
    first.journal.write(entry('c', 'busy', Date.now() + 60_000));
    first.journal.write(entry('d', 'answered'));
    // A line cut short by a crash is skipped.
    writeFileSync(path.join(dir, 'outbound-calls.jsonl'), readFileSync(path.join(dir, 'outbound-calls.jsonl'), 'utf8') + '{"view":{"id"');
    const again = OutboundJournal.open(admitted, log)!;
    const byId = new Map(again.entries.map((e) => [e.view.id, e]));
    expect(byId.get('a')?.view.status).toBe('queued');
    expect(byId.get('a')?.key).toBe('k1');
    expect(byId.get('c')?.view.status).toBe('busy');
    expect([byId.get('b')?.view.status, byId.get('b')?.view.result]).toEqual(['ended', 'failed']);
    expect(byId.get('b')?.view.detail).toMatch(/interrupted by a restart during attempt 1; not placed again/);
    expect([byId.get('d')?.view.status, byId.get('d')?.view.result]).toEqual(['ended', 'answered']);
    // Compacted: one line per call.
    expect(readFileSync(path.join(dir, 'outbound-calls.jsonl'), 'utf8').trim().split('\n')).toHaveLength(4);
  });

  it('no data directory (records in memory): no journal', () => {
    expect(OutboundJournal.open(undefined, log)).toBeUndefined();
  });
});
