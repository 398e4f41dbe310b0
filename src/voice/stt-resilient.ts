/**
 * One caller's speech-to-text for a whole call, over streams that may fail (issue 22 item 3).
 *
 * Audio goes to the provider's current stream and into a bounded buffer of what was said since the
 * last final transcript (`bufferMs`, oldest dropped first). When the stream fails with a retryable
 * error (a dropped connection, the vendor's 5xx or idle close), a new one is opened and the buffer
 * re-sent first, so the words in flight are not lost; a final drops the audio it covers, so words
 * are not heard twice. A non-retryable error (bad key, refused settings), or more than `maxReopens`
 * failures without a final in between, ends it: `onFailed` is told once, and audio is dropped.
 */
import { errorMessage } from '../core/errors.js';
import { SttError, type SttEvent, type SttOptions, type SttProvider, type SttStream } from './stt.js';

export interface ResilientSttOptions {
  provider: SttProvider;
  options: SttOptions;
  /** Audio kept since the last final, re-sent to a reopened stream (default 10 000 ms). */
  bufferMs?: number;
  /** Reopens after retryable failures before giving up (default 3); a final resets the count. */
  maxReopens?: number;
  /** First wait before a reopen, doubled each time (default 200 ms). */
  reopenDelayMs?: number;
  /** Every event of the streams but errors (finals' `atMs` are the stream's). */
  onEvent(ev: Exclude<SttEvent, { type: 'error' }>): void;
  /** The provider failed for good (once). */
  onFailed(err: SttError): void;
  /** A stream failed and is being reopened. */
  onReopen?(err: SttError, attempt: number): void;
}

interface Chunk {
  pcm: Int16Array;
  rate: number;
  startMs: number;
  endMs: number;
}

const asSttError = (err: unknown): SttError =>
  err instanceof SttError ? err : new SttError(`speech-to-text failed: ${errorMessage(err)}`, { retryable: true, cause: err });

export class ResilientStt {
  private stream: SttStream | undefined;
  private readonly buffer: Chunk[] = [];
  /** Audio time written so far, ms since the first frame of the call. */
  private clockMs = 0;
  /** Call audio time of the current stream's first sample. */
  private streamT0Ms = 0;
  private reopens = 0;
  private failed = false;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(private readonly o: ResilientSttOptions) {}

  get isFailed(): boolean {
    return this.failed;
  }

  /** Opens the first stream; resolves once it is open or the provider failed for good (never rejects). */
  start(): Promise<void> {
    return this.open();
  }

  write(pcm: Int16Array, sampleRate: number): void {
    if (this.failed || this.closed || pcm.length === 0) return;
    const ms = (pcm.length / sampleRate) * 1000;
    this.buffer.push({ pcm, rate: sampleRate, startMs: this.clockMs, endMs: this.clockMs + ms });
    this.clockMs += ms;
    const keep = this.o.bufferMs ?? 10_000;
    while (this.buffer.length > 0 && this.clockMs - this.buffer[0]!.endMs > keep) this.buffer.shift();
    this.stream?.write(pcm, sampleRate);
  }

  /** Flushes and ends the current stream (its last finals still arrive). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    const s = this.stream;
    this.stream = undefined;
    await s?.close().catch(() => undefined);
  }

  private async open(): Promise<void> {
    let delay = this.o.reopenDelayMs ?? 200;
    for (;;) {
      if (this.closed || this.failed) return;
      try {
        const s = await this.o.provider.open({ ...this.o.options, signal: this.abort.signal });
        if (this.closed) return void s.abort();
        this.streamT0Ms = this.buffer[0]?.startMs ?? this.clockMs;
        for (const c of this.buffer) s.write(c.pcm, c.rate);
        this.stream = s;
        void this.pump(s);
        return;
      } catch (err) {
        const e = asSttError(err);
        if (!this.retry(e)) return;
        await new Promise((r) => setTimeout(r, delay).unref());
        delay *= 2;
      }
    }
  }

  /** Counts a retryable failure; false (and `onFailed`) when this is the end. */
  private retry(e: SttError): boolean {
    if (this.closed) return false;
    if (!e.retryable || this.reopens >= (this.o.maxReopens ?? 3)) {
      this.failed = true;
      this.stream = undefined;
      this.o.onFailed(e);
      return false;
    }
    this.reopens++;
    this.o.onReopen?.(e, this.reopens);
    return true;
  }

  private async pump(s: SttStream): Promise<void> {
    let failure: SttError | undefined;
    try {
      for await (const ev of s.events()) {
        if (ev.type === 'error') {
          failure = ev.error;
          break;
        }
        if (ev.type === 'final') this.settled(ev.atMs);
        this.o.onEvent(ev);
      }
    } catch (err) {
      failure = asSttError(err);
    }
    if (this.closed || this.stream !== s) return;
    this.stream = undefined;
    failure ??= new SttError('the speech-to-text stream ended by itself', { retryable: true });
    if (this.retry(failure)) await this.open();
  }

  /** A final covers the stream's audio up to `atMs`: that audio need not be re-sent. */
  private settled(atMs: number): void {
    this.reopens = 0;
    const upTo = this.streamT0Ms + atMs;
    while (this.buffer.length > 0 && this.buffer[0]!.endMs <= upTo) this.buffer.shift();
  }
}
