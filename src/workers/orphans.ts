/**
 * Orphaned calls (issue 21, item 5): a worker whose service process died (SIGKILL, OOM) does not cut
 * its caller off. It finishes the call on its own and leaves what happened in the service's data
 * directory, `<data dir>/orphans/`, where the restarted service picks it up:
 *
 *  - `<id>.live.json` when it is orphaned: the call, the worker's pid, the stages it had reached;
 *  - `<id>.end.json` when the call is over: the same plus its outcome (written whole, then renamed,
 *    so a reader never sees half of it); the `.live` file is removed then.
 *
 * `<id>` is patchbay's id for the call (a UUID). The worker knows the directory from `init`
 * (`WorkerInit.orphanDir`, absent when the service keeps no data directory: the call is still
 * finished, but nobody learns its outcome).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CallIdentity } from '../core/call-identity.js';
import { isOutcome, type Outcome } from '../core/outcome.js';
import type { WorkerStage } from '../core/timeline.js';

export interface OrphanCall {
  identity: CallIdentity;
  receivedAtMs: number;
  pid: number;
  /** When the worker found its service gone. */
  orphanedAtMs: number;
  /** The stages the worker reported (or would have), with their times. */
  stages: Array<{ stage: WorkerStage; atMs: number }>;
}

export interface OrphanEnd extends OrphanCall {
  outcome: Outcome;
  detail?: string;
  endedAtMs: number;
}

/** The orphans' directory beside the admitted log (the service's data directory); none without one. */
export function orphanDirOf(admittedPath: string): string;
export function orphanDirOf(admittedPath: string | undefined): string | undefined;
export function orphanDirOf(admittedPath: string | undefined): string | undefined {
  return admittedPath === undefined ? undefined : path.join(path.dirname(admittedPath), 'orphans');
}

const safe = (id: string) => id.replace(/[^A-Za-z0-9_-]/g, '_');

function writeWhole(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value));
  renameSync(tmp, file);
}

/** Worker: its service is gone and it goes on with the call. Never throws. */
export function writeOrphanLive(dir: string, c: OrphanCall): void {
  try {
    mkdirSync(dir, { recursive: true });
    writeWhole(path.join(dir, `${safe(c.identity.id)}.live.json`), c);
  } catch {
    /* nobody to tell: the call goes on */
  }
}

/** Worker: the orphaned call is over. Never throws. */
export function writeOrphanEnd(dir: string, e: OrphanEnd): void {
  try {
    mkdirSync(dir, { recursive: true });
    writeWhole(path.join(dir, `${safe(e.identity.id)}.end.json`), e);
    rmSync(path.join(dir, `${safe(e.identity.id)}.live.json`), { force: true });
  } catch {
    /* the restarted service closes it `interrupted` */
  }
}

/** Service: forget an orphan once its record is written. */
export function removeOrphan(dir: string, id: string): void {
  for (const kind of ['live', 'end']) rmSync(path.join(dir, `${safe(id)}.${kind}.json`), { force: true });
}

/** Whether `pid` is still a patchbay worker (not a process that reused its number). */
export function isWorkerAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('workers');
  } catch {
    return !existsSync('/proc/self'); // no procfs: trust kill(0)
  }
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function isOrphanCall(v: unknown): v is OrphanCall {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Partial<OrphanCall>;
  return (
    typeof o.identity?.id === 'string' && typeof o.identity.callId === 'string' && typeof o.pid === 'number' && Array.isArray(o.stages)
  );
}

function isOrphanEnd(v: unknown): v is OrphanEnd {
  return isOrphanCall(v) && isOutcome((v as Partial<OrphanEnd>).outcome) && typeof (v as Partial<OrphanEnd>).endedAtMs === 'number';
}

/**
 * What the last process's orphans left: calls over (`ended`), calls still being finished by a live
 * worker (`live`), and calls whose worker died too before it could tell (`gone`).
 */
export function scanOrphans(dir: string | undefined): { ended: OrphanEnd[]; live: OrphanCall[]; gone: OrphanCall[] } {
  const out = { ended: [] as OrphanEnd[], live: [] as OrphanCall[], gone: [] as OrphanCall[] };
  if (!dir || !existsSync(dir)) return out;
  const files = readdirSync(dir);
  for (const f of files.filter((x) => x.endsWith('.end.json'))) {
    const e = readJson(path.join(dir, f));
    if (isOrphanEnd(e)) out.ended.push(e);
  }
  const ended = new Set(out.ended.map((e) => e.identity.id));
  for (const f of files.filter((x) => x.endsWith('.live.json'))) {
    const c = readJson(path.join(dir, f));
    if (!isOrphanCall(c) || ended.has(c.identity.id)) continue;
    (isWorkerAlive(c.pid) ? out.live : out.gone).push(c);
  }
  return out;
}
