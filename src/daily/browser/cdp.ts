/**
 * A minimal Chrome DevTools Protocol client over one WebSocket (flat sessions): what a worker
 * needs to run its bot page in a shared browser, without loading Playwright (~70 MB PSS per
 * process, see docs/BENCHMARKS.md). Commands return promises; events go to listeners by method
 * (and session). Closing the socket, or the worker dying, makes Chromium dispose every browser
 * context this connection created with `disposeOnDetach` — the blast radius of a worker kill.
 */
import { WebSocket } from 'ws';

type Listener = (params: Record<string, unknown>, sessionId: string | undefined) => void;

export class CdpError extends Error {
  override name = 'CdpError';
}

export class CdpConnection {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly closeListeners: Array<() => void> = [];
  private open = true;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => this.onMessage(String(data)));
    ws.on('close', () => this.handleClose());
    ws.on('error', () => undefined);
  }

  static connect(url: string, timeoutMs: number): Promise<CdpConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new CdpError(`no DevTools connection within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(new CdpConnection(ws));
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(new CdpError(`DevTools connection failed: ${err.message}`));
      });
    });
  }

  get connected(): boolean {
    return this.open;
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    if (!this.open) return Promise.reject(new CdpError(`${method}: the browser connection is closed`));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  on(method: string, l: Listener): () => void {
    let set = this.listeners.get(method);
    if (!set) this.listeners.set(method, (set = new Set()));
    set.add(l);
    return () => set.delete(l);
  }

  onClose(cb: () => void): void {
    if (!this.open) cb();
    else this.closeListeners.push(cb);
  }

  private handleClose(): void {
    if (!this.open) return;
    this.open = false;
    const err = new CdpError('the browser connection closed');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const l of this.closeListeners.splice(0)) l();
  }

  close(): void {
    this.ws.close();
    this.handleClose();
  }

  private onMessage(text: string): void {
    let m: {
      id?: number;
      method?: string;
      params?: Record<string, unknown>;
      result?: Record<string, unknown>;
      error?: { message?: string };
      sessionId?: string;
    };
    try {
      m = JSON.parse(text) as typeof m;
    } catch {
      return;
    }
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new CdpError(m.error.message ?? 'CDP error'));
      else p.resolve(m.result ?? {});
      return;
    }
    if (m.method) for (const l of this.listeners.get(m.method) ?? []) l(m.params ?? {}, m.sessionId);
  }
}
