/**
 * Playing a speech-to-speech model's audio to the caller as it streams in, and knowing at every
 * moment how much of each of the model's items the caller has heard: a barge-in stops the playing
 * at once (`stop`) and says where the item was cut, for `conversation.item.truncate`.
 *
 * Chunks queued while one plays go out together as the next piece (up to MAX_PIECE_MS; one
 * `sendAudio` each, which resolves when played out). The words of the model's transcript ride on the audio they came with
 * (`AudioOut.text`), so the emulator's caller sees them as the bot's line.
 */
import type { AudioOut } from '../daily/call-client.js';
import { errorMessage } from '../core/errors.js';

interface Chunk {
  itemId: string;
  pcm: Int16Array;
  sampleRate: number;
}

export interface Cut {
  itemId: string;
  /** Audio of the item the caller heard, ms. */
  playedMs: number;
  /** Audio of the item received so far, ms. */
  receivedMs: number;
  /** The item's transcript so far. */
  text: string;
}

export interface PlayoutDeps {
  sendAudio(audio: AudioOut, signal: AbortSignal): Promise<void>;
  signal: AbortSignal;
  /** The first frame of a piece went to the call client (epoch ms). */
  onSend?: (itemId: string, atMs: number) => void;
  warn(msg: string): void;
}

const MAX_PIECE_MS = 240;
const msOf = (pcm: Int16Array, rate: number) => (pcm.length / rate) * 1000;

export class Playout {
  private queue: Chunk[] = [];
  private playing: { itemId: string; ms: number; started: number; ctrl: AbortController } | undefined;
  private readonly played = new Map<string, number>();
  private readonly received = new Map<string, number>();
  private readonly texts = new Map<string, string>();
  /** Transcript words not yet sent with audio, per item. */
  private readonly unsent = new Map<string, string>();
  private readonly cut = new Set<string>();
  private running: Promise<void> | undefined;

  constructor(private readonly deps: PlayoutDeps) {}

  /** Audio of item `itemId`; dropped when that item was cut by a barge-in. */
  push(itemId: string, pcm: Int16Array, sampleRate: number): void {
    if (this.cut.has(itemId) || this.deps.signal.aborted) return;
    this.received.set(itemId, (this.received.get(itemId) ?? 0) + msOf(pcm, sampleRate));
    this.queue.push({ itemId, pcm, sampleRate });
    this.running ??= this.loop().finally(() => (this.running = undefined));
  }

  /** Words of item `itemId`'s audio. */
  text(itemId: string, delta: string): void {
    if (this.cut.has(itemId)) return;
    this.texts.set(itemId, (this.texts.get(itemId) ?? '') + delta);
    this.unsent.set(itemId, (this.unsent.get(itemId) ?? '') + delta);
  }

  /** The items that have words, in order of arrival. */
  itemsWithText(): string[] {
    return [...this.texts.keys()];
  }

  /** The item's whole transcript so far. */
  transcriptOf(itemId: string): string {
    return (this.texts.get(itemId) ?? '').trim();
  }

  /** Words of an item that never rode on audio (a transcript that came after its audio): shown now, no play-out time. */
  async flushText(itemId: string): Promise<void> {
    const rest = this.unsent.get(itemId)?.trim();
    this.unsent.delete(itemId);
    if (!rest || this.cut.has(itemId)) return;
    await this.idle();
    if (this.cut.has(itemId) || this.deps.signal.aborted) return;
    await this.deps
      .sendAudio({ pcm: new Int16Array(0), sampleRate: 24_000, text: rest, durationMs: 0 }, this.deps.signal)
      .catch(() => undefined);
  }

  /** Resolves when everything queued has been played (or stopped). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Barge-in: stops at once; the item that was playing (or about to) and how much of it was heard. */
  stop(): Cut | undefined {
    const p = this.playing;
    const itemId = p?.itemId ?? this.queue[0]?.itemId;
    this.queue = [];
    if (p) p.ctrl.abort();
    if (itemId === undefined) return undefined;
    this.cut.add(itemId);
    const playedMs = (this.played.get(itemId) ?? 0) + (p && p.itemId === itemId ? Math.min(p.ms, Date.now() - p.started) : 0);
    return { itemId, playedMs, receivedMs: this.received.get(itemId) ?? 0, text: this.transcriptOf(itemId) };
  }

  private async loop(): Promise<void> {
    while (this.queue.length > 0 && !this.deps.signal.aborted) {
      const itemId = this.queue[0]!.itemId;
      const rate = this.queue[0]!.sampleRate;
      // Up to MAX_PIECE_MS per piece: the words riding on it stay close to their audio.
      let n = 0;
      let ms = 0;
      while (
        n < this.queue.length &&
        this.queue[n]!.itemId === itemId &&
        this.queue[n]!.sampleRate === rate &&
        (n === 0 || ms < MAX_PIECE_MS)
      ) {
        ms += msOf(this.queue[n]!.pcm, rate);
        n++;
      }
      const parts = this.queue.splice(0, n);
      const pcm = new Int16Array(parts.reduce((s, c) => s + c.pcm.length, 0));
      let off = 0;
      for (const c of parts) {
        pcm.set(c.pcm, off);
        off += c.pcm.length;
      }
      await this.send(itemId, pcm, rate);
    }
  }

  private async send(itemId: string, pcm: Int16Array, sampleRate: number): Promise<void> {
    const ms = msOf(pcm, sampleRate);
    const ctrl = new AbortController();
    const started = Date.now();
    this.playing = { itemId, ms, started, ctrl };
    const words = this.unsent.get(itemId)?.trim();
    this.unsent.delete(itemId);
    const out: AudioOut = words ? { pcm, sampleRate, text: words } : { pcm, sampleRate, continues: true };
    this.deps.onSend?.(itemId, started);
    try {
      await this.deps.sendAudio(out, AbortSignal.any([this.deps.signal, ctrl.signal]));
      this.played.set(itemId, (this.played.get(itemId) ?? 0) + ms);
    } catch (err) {
      if (!ctrl.signal.aborted && !this.deps.signal.aborted) this.deps.warn(`playing the model's audio failed: ${errorMessage(err)}`);
    } finally {
      this.playing = undefined;
    }
  }
}
