/** Small async helpers of the call session: a buffered FIFO for caller input, a deferred. */
import { CallEndedError } from '../core/errors.js';

export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A FIFO that hands items to waiters, or buffers them until someone asks. */
export class Inbox<T> {
  private items: T[] = [];
  private waiters: Array<(v: T) => void> = [];

  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else {
      this.items.push(v);
      if (this.items.length > 256) this.items.shift();
    }
  }

  /** Next item, or undefined after `timeoutMs`; rejects when `signal` aborts. */
  next(timeoutMs: number, signal: AbortSignal): Promise<T | undefined> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    return new Promise<T | undefined>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      const waiter = (v: T) => {
        done();
        resolve(v);
      };
      const onAbort = () => {
        done();
        reject(new CallEndedError(String(signal.reason ?? 'ended')));
      };
      const timer = setTimeout(() => {
        done();
        resolve(undefined);
      }, timeoutMs);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Puts `v` back at the head (an item taken by a waiter that gave up). */
  pushFront(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.unshift(v);
  }

  clear(): void {
    this.items = [];
  }

  get size(): number {
    return this.items.length;
  }

  /** Drops the buffered head item if it equals `v`. */
  dropHead(v: T): boolean {
    if (this.items.length > 0 && this.items[0] === v) {
      this.items.shift();
      return true;
    }
    return false;
  }
}
