/**
 * Rooms a replica left behind (kill -9, power loss): every room this replica creates is named
 * `pb-<REPLICA_ID>-<base36 ms>-<random>`, so at start-up it lists the domain's rooms, picks its own
 * created before this process started and not in use, and deletes them in the background through
 * the room service's paced deletion queue. A lock file in the data directory keeps two live
 * processes sharing one data directory (and so one replica id) from sweeping each other's rooms.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { DailyRestClient } from './rest.js';
import { errorMessage } from '../core/errors.js';

export function roomNameFor(replicaId: string, now = Date.now()): string {
  return `pb-${replicaId}-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** When `name` is one of this replica's rooms: its creation time (ms), else undefined. */
export function ownRoomCreatedAtMs(name: string, replicaId: string): number | undefined {
  const prefix = `pb-${replicaId}-`;
  if (!name.startsWith(prefix)) return undefined;
  const m = /^([0-9a-z]+)-[0-9a-f]+$/.exec(name.slice(prefix.length));
  const ms = m ? parseInt(m[1]!, 36) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `<dataDir>/replica.lock` unless another live process holds it. */
export function takeReplicaLock(dataDir: string): { ok: true } | { ok: false; holder: number } {
  const file = path.join(dataDir, 'replica.lock');
  try {
    const holder = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) return { ok: false, holder };
  } catch {
    /* none yet */
  }
  writeFileSync(file, `${process.pid}\n`);
  return { ok: true };
}

export interface SweepDeps {
  rest: Pick<DailyRestClient, 'listRooms'>;
  /** The room service's paced deletion (`RoomService.release`). */
  release(roomName: string): Promise<void>;
  replicaId: string;
  /** Rooms created from this moment on are this process's own. */
  startedAtMs: number;
  /** A room a live call of this process uses (never deleted). */
  inUse(roomName: string): boolean;
  logger: Logger;
  signal?: AbortSignal;
}

const MAX_PAGES = 200;

/** Lists every room (newest first, 100 a page) and releases this replica's leftovers. Never throws. */
export async function sweepLeftovers(d: SweepDeps): Promise<{ listed: number; leftovers: number }> {
  const log = d.logger.child({ component: 'leftovers', replicaId: d.replicaId });
  const seen = new Set<string>();
  const found: string[] = [];
  let before: string | undefined;
  try {
    for (let page = 0; page < MAX_PAGES; page++) {
      const r = await d.rest.listRooms(
        { limit: 100, ...(before ? { endingBefore: before } : {}) },
        d.signal ? { signal: d.signal } : undefined,
      );
      const fresh = r.data.filter((room) => !seen.has(room.id));
      for (const room of fresh) {
        seen.add(room.id);
        const name = room.name;
        const at = ownRoomCreatedAtMs(name, d.replicaId);
        if (at !== undefined && at < d.startedAtMs && !d.inUse(name)) found.push(name);
      }
      if (r.data.length < 100 || fresh.length === 0) break;
      before = r.data[r.data.length - 1]!.id;
    }
  } catch (err) {
    log.warn(
      { err: errorMessage(err), listed: seen.size },
      'could not list all rooms; leftovers found so far are deleted, the rest expire',
    );
  }
  if (found.length > 0) log.warn({ leftovers: found.length, rooms: found.slice(0, 20) }, 'deleting rooms this replica left behind');
  else log.info({ listed: seen.size }, 'no rooms left behind by this replica');
  await Promise.all(found.map((name) => d.release(name)));
  return { listed: seen.size, leftovers: found.length };
}
