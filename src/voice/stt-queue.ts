/** An `SttStream`'s events: pushed by the vendor's socket handlers, read by one `for await`. */
import type { SttEvent } from './stt.js';

export class SttEventQueue {
  private readonly items: SttEvent[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;

  push(ev: SttEvent): void {
    if (this.ended) return;
    this.items.push(ev);
    if (ev.type === 'error') this.ended = true;
    this.wake();
  }

  /** No more events (after those queued). */
  end(): void {
    this.ended = true;
    this.wake();
  }

  get done(): boolean {
    return this.ended;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *iterate(): AsyncGenerator<SttEvent> {
    for (;;) {
      const next = this.items.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
}
