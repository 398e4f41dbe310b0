/**
 * The reliability invariant, checked after every fault: nothing lost, nothing leaked.
 *
 *  - every call the test placed is over on the emulator side;
 *  - every call patchbay took on (webhook answered 200, or refused because its room failed) has
 *    exactly one recorded outcome, and no record ended twice;
 *  - the emulator has no room, call client, or webhook in flight left;
 *  - the dispatcher is idle (nothing running, queued, admitting or live) and no worker is busy;
 *  - no child process of this test process other than the pool's warm workers, and no zombie.
 *
 * Waits (generous timeouts, polling the real state) because cleanup is asynchronous by design;
 * throws with a description of everything still wrong when the deadline passes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { CallRecord } from '../../src/admission/dispatcher.js';
import { isOutcome } from '../../src/core/outcome.js';
import type { EmulatedCall } from '../../src/emulator/types.js';
import type { Stack } from './stack.js';

export interface ProcInfo {
  pid: number;
  state: string;
  cmdline: string;
}

/** Children of `ppid` (default: this process), from /proc. */
export function childProcesses(ppid = process.pid): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== ppid) continue;
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      } catch {
        /* zombie or gone */
      }
      out.push({ pid: Number(name), state: fields[0] ?? '?', cmdline });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Our worker processes among this process's children (esbuild's service and the like are not ours). */
export function workerChildren(ppid = process.pid): ProcInfo[] {
  return childProcesses(ppid).filter((p) => p.state === 'Z' || /workers[/\\]child[/\\]main\.(ts|js)/.test(p.cmdline));
}

export interface InvariantInput {
  stack: Stack;
  /** Calls placed on the emulator by the test. */
  placed?: readonly EmulatedCall[];
  /** Records that ended before this check began and belong to other checks (default: none excluded). */
  since?: number;
  timeoutMs?: number;
  /** After stack.close(): no worker child may remain at all. */
  closed?: boolean;
}

export interface InvariantReport {
  placed: number;
  /** Calls patchbay took on (a record was created). */
  admitted: number;
  /** Refused before any record (busy: queue full or draining): Daily keeps them on hold. */
  refused: number;
  byOutcome: Record<string, number>;
}

function problems(input: InvariantInput): { issues: string[]; report: InvariantReport } {
  const { stack } = input;
  const issues: string[] = [];
  const ended = stack.ended.slice(input.since ?? 0);
  const byOutcome: Record<string, number> = {};
  const seenIds = new Map<string, number>();
  for (const r of ended) {
    seenIds.set(r.id, (seenIds.get(r.id) ?? 0) + 1);
    byOutcome[r.outcome ?? 'none'] = (byOutcome[r.outcome ?? 'none'] ?? 0) + 1;
    if (!isOutcome(r.outcome)) issues.push(`record ${r.id} ended without a valid outcome (${String(r.outcome)})`);
    if (r.state !== 'ended') issues.push(`record ${r.id} emitted call-ended in state ${r.state}`);
  }
  for (const [id, n] of seenIds) if (n > 1) issues.push(`record ${id} ended ${n} times`);

  let admitted = 0;
  let refused = 0;
  for (const c of input.placed ?? []) {
    if (c.state !== 'ended') issues.push(`emulated call ${c.callId} is still ${c.state}`);
    const recs: CallRecord[] = ended.filter((r) => r.callId === c.callId);
    const status = c.webhook?.status;
    if (recs.length === 0) {
      // Never taken on: refused (503 busy), not delivered, or hung up before the webhook.
      if (status === 200) issues.push(`call ${c.callId} was accepted (200) but has no outcome`);
      else refused++;
      continue;
    }
    admitted++;
    // A call refused because its room failed may be retried by Daily: each admission ends once; at
    // most one of them is not room_failed.
    const real = recs.filter((r) => r.outcome !== 'room_failed');
    if (real.length > 1) issues.push(`call ${c.callId} has ${real.length} outcomes: ${real.map((r) => r.outcome).join(', ')}`);
    if (status === 200 && real.length !== 1)
      issues.push(`call ${c.callId} was accepted (200) but has ${real.length} non-room_failed outcomes`);
  }

  const snap = stack.emulator.snapshot();
  if (snap.rooms.length > 0) issues.push(`emulator rooms left: ${snap.rooms.map((r) => r.name).join(', ')}`);
  if (snap.clients > 0) issues.push(`emulator call clients left: ${snap.clients}`);
  if (snap.webhooksInFlight > 0) issues.push(`emulator webhooks in flight: ${snap.webhooksInFlight}`);
  const live = snap.calls.filter((c) => c.state !== 'ended');
  if (live.length > 0) issues.push(`emulator calls not ended: ${live.map((c) => `${c.callId}:${c.state}`).join(', ')}`);

  const d = stack.rt.dispatcher.stats();
  if (d.active + d.queued + d.admitting !== 0) issues.push(`dispatcher not idle: ${JSON.stringify(d)}`);
  const liveCalls = stack.rt.dispatcher.liveCalls();
  if (liveCalls.length > 0) issues.push(`dispatcher live calls: ${liveCalls.map((r) => `${r.id}:${r.state}`).join(', ')}`);
  const p = stack.rt.pool.stats();
  if (p.busy !== 0) issues.push(`pool busy workers: ${p.busy}`);

  const known = new Set(input.closed ? [] : stack.rt.pool.all().map((w) => w.pid));
  const kids = workerChildren();
  const zombies = kids.filter((k) => k.state === 'Z');
  if (zombies.length > 0) issues.push(`zombie children: ${zombies.map((z) => z.pid).join(', ')}`);
  const strays = kids.filter((k) => k.state !== 'Z' && !known.has(k.pid));
  if (strays.length > 0) issues.push(`worker processes not owned by the pool: ${strays.map((s) => s.pid).join(', ')}`);

  return { issues, report: { placed: input.placed?.length ?? 0, admitted, refused, byOutcome } };
}

/** Waits until the invariant holds (or throws naming every problem left after `timeoutMs`). */
export async function expectNoLeaks(input: InvariantInput): Promise<InvariantReport> {
  const deadline = Date.now() + (input.timeoutMs ?? 20_000);
  for (;;) {
    const { issues, report } = problems(input);
    if (issues.length === 0) return report;
    if (Date.now() > deadline) throw new Error(`reliability invariant violated:\n  - ${issues.join('\n  - ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls `cond` until true (or throws after `timeoutMs`). */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
