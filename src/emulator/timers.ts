/** Every timer of one emulator, so that close() leaves nothing behind and snapshots can count them. */
export class Timers {
  private readonly handles = new Set<NodeJS.Timeout>();
  private readonly sleepers = new Set<() => void>();
  private closed = false;

  get size(): number {
    return this.handles.size;
  }

  /** Runs `fn` after `ms`; returns a cancel function. A no-op once closed. */
  after(ms: number, fn: () => void): () => void {
    if (this.closed) return () => {};
    const h = setTimeout(
      () => {
        this.handles.delete(h);
        fn();
      },
      Math.max(0, Math.min(ms, 2_147_483_647)),
    );
    this.handles.add(h);
    return () => {
      clearTimeout(h);
      this.handles.delete(h);
    };
  }

  /** Resolves after `ms`, or at once when the emulator closes. */
  sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.sleepers.delete(done);
        cancel();
        resolve();
      };
      const cancel = this.after(ms, done);
      this.sleepers.add(done);
    });
  }

  clearAll(): void {
    this.closed = true;
    for (const h of this.handles) clearTimeout(h);
    this.handles.clear();
    for (const s of [...this.sleepers]) s();
    this.sleepers.clear();
  }
}
