/**
 * The callback store when there is nowhere durable to keep it (CALL_RECORDS_PATH=off, no REDIS_URL):
 * the same transitions in memory. Nothing outlives the process (docs/outbound.md says so).
 */
import { rowOf, type CallbackRequest, type CallbackRow, type CallbackStore } from './callback-types.js';

export class MemoryCallbacks implements CallbackStore {
  private readonly rows = new Map<string, CallbackRow>();

  add(r: CallbackRequest): Promise<void> {
    if (!this.rows.has(r.id)) this.rows.set(r.id, rowOf(r, Date.now()));
    return Promise.resolve();
  }

  claim(owner: string, nowMs: number): Promise<CallbackRow | undefined> {
    const next = [...this.rows.values()].filter((r) => r.state === 'pending').sort((a, b) => a.requestedAtMs - b.requestedAtMs)[0];
    if (next) Object.assign(next, { state: 'claimed', owner, updatedAtMs: nowMs });
    return Promise.resolve(next ? { ...next } : undefined);
  }

  dialing(id: string, owner: string, outboundId: string, nowMs: number): Promise<boolean> {
    const r = this.rows.get(id);
    const ok = r?.state === 'claimed' && r.owner === owner;
    if (ok) Object.assign(r, { state: 'dialing', outboundId, updatedAtMs: nowMs });
    return Promise.resolve(ok);
  }

  done(id: string, result: string, nowMs: number): Promise<void> {
    const r = this.rows.get(id);
    if (r && r.state !== 'done') Object.assign(r, { state: 'done', result, updatedAtMs: nowMs });
    return Promise.resolve();
  }

  release(id: string, owner: string, nowMs: number): Promise<void> {
    const r = this.rows.get(id);
    if (r?.state === 'claimed' && r.owner === owner) Object.assign(r, { state: 'pending', owner: null, updatedAtMs: nowMs });
    return Promise.resolve();
  }

  recover(): Promise<{ requeued: number; interrupted: number }> {
    return Promise.resolve({ requeued: 0, interrupted: 0 });
  }

  list(): Promise<CallbackRow[]> {
    return Promise.resolve([...this.rows.values()].map((r) => ({ ...r })).sort((a, b) => a.requestedAtMs - b.requestedAtMs));
  }
}
