/**
 * Fleet mode (docs/outbound.md "Callbacks"): the fleet queue in Redis decides (claims, a lost
 * replica's callbacks), and the records database keeps a copy of every callback this replica
 * stored, claimed, dialled or finished — written after the queue's step, and only logged when it
 * fails (the queue's answer stands).
 */
import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import { rowOf, type CallbackMirror, type CallbackRequest, type CallbackRow, type CallbackStore } from './callback-types.js';

export class MirroredCallbacks implements CallbackStore {
  /** Rows this replica holds (claimed or dialling), for the copies of their next steps. */
  private readonly held = new Map<string, CallbackRow>();

  constructor(
    private readonly queue: CallbackStore,
    private readonly mirror: CallbackMirror,
    private readonly log: Logger,
  ) {}

  private copy(row: CallbackRow | undefined): void {
    if (!row) return;
    this.mirror.put(row).catch((err: unknown) => this.log.warn({ id: row.id, err: errorMessage(err) }, 'callback: records copy failed'));
  }

  async add(r: CallbackRequest): Promise<void> {
    await this.queue.add(r);
    this.copy(rowOf(r, Date.now()));
  }

  async claim(owner: string, nowMs: number): Promise<CallbackRow | undefined> {
    const row = await this.queue.claim(owner, nowMs);
    if (row) this.held.set(row.id, row);
    this.copy(row);
    return row;
  }

  async dialing(id: string, owner: string, outboundId: string, nowMs: number): Promise<boolean> {
    const ok = await this.queue.dialing(id, owner, outboundId, nowMs);
    const row = this.held.get(id);
    if (ok && row) this.copy(Object.assign(row, { state: 'dialing', outboundId, updatedAtMs: nowMs }));
    return ok;
  }

  async done(id: string, result: string, nowMs: number): Promise<void> {
    await this.queue.done(id, result, nowMs);
    const row = this.held.get(id);
    this.held.delete(id);
    if (row) this.copy({ ...row, state: 'done', result, updatedAtMs: nowMs });
  }

  async release(id: string, owner: string, nowMs: number): Promise<void> {
    await this.queue.release(id, owner, nowMs);
    const row = this.held.get(id);
    this.held.delete(id);
    if (row) this.copy({ ...row, state: 'pending', owner: null, updatedAtMs: nowMs });
  }

  recover(owner: string, nowMs: number): Promise<{ requeued: number; interrupted: number }> {
    return this.queue.recover(owner, nowMs);
  }

  list(): Promise<CallbackRow[]> {
    return this.queue.list();
  }
}
