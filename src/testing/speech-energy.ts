/**
 * Voiced segments in PCM16 by energy, for the speech-to-text stand-ins: a 20 ms frame is voiced when
 * its RMS reaches `speechRms`; a segment starts at a voiced frame and ends after `hangoverMs` of
 * unvoiced frames. Segments shorter than `minSpeechMs` (a click) are dropped. The stand-ins give a
 * segment the words a test registered for audio of the same voiced length: transcripts follow the
 * audio actually received, and silence never has words.
 */
export interface EnergyOptions {
  /** RMS (PCM16 units) at or above which a frame is voiced (default 500 ≈ −36 dBFS). */
  speechRms?: number;
  /** Unvoiced time that ends a segment (default 400 ms; espeak-ng's pauses between words are shorter). */
  hangoverMs?: number;
  /** Shorter voiced runs are not speech (default 120 ms). */
  minSpeechMs?: number;
}

export interface VoicedSegment {
  /** Ms from the first sample pushed. */
  startMs: number;
  endMs: number;
  /** Date.now() when its last voiced frame arrived (live pushes; benchmarks time the way there). */
  heardAtMs?: number;
  /** That frame (20 ms), to find it on the sender's side. */
  lastFrame?: Int16Array;
}

const FRAME_MS = 20;

export class EnergySegmenter {
  private readonly speechRms: number;
  private readonly hangoverMs: number;
  private readonly minSpeechMs: number;
  private carry = new Int16Array(0);
  private clockMs = 0;
  private segStartMs: number | undefined;
  private lastVoicedEndMs = 0;
  private silentMs = 0;
  private lastVoiced: { atMs: number; frame: Int16Array } | undefined;

  constructor(
    private readonly sampleRate: number,
    opts: EnergyOptions = {},
  ) {
    this.speechRms = opts.speechRms ?? 500;
    this.hangoverMs = opts.hangoverMs ?? 400;
    this.minSpeechMs = opts.minSpeechMs ?? 120;
  }

  /** Audio time received so far, ms. */
  get timeMs(): number {
    return this.clockMs;
  }

  /** Start of the segment in progress (voice heard, not yet ended). */
  get speechStartMs(): number | undefined {
    return this.segStartMs;
  }

  /** Adds audio; returns the segments it ends, and whether a segment started. */
  push(pcm: Int16Array): { ended: VoicedSegment[]; started: boolean } {
    const frame = Math.round((this.sampleRate * FRAME_MS) / 1000);
    const all = new Int16Array(this.carry.length + pcm.length);
    all.set(this.carry);
    all.set(pcm, this.carry.length);
    const ended: VoicedSegment[] = [];
    const now = Date.now();
    let started = false;
    let off = 0;
    for (; off + frame <= all.length; off += frame) {
      const voiced = rms(all.subarray(off, off + frame)) >= this.speechRms;
      this.clockMs += FRAME_MS;
      if (voiced) {
        if (this.segStartMs === undefined) {
          this.segStartMs = this.clockMs - FRAME_MS;
          started = true;
        }
        this.lastVoicedEndMs = this.clockMs;
        this.lastVoiced = { atMs: now, frame: all.subarray(off, off + frame) };
        this.silentMs = 0;
      } else if (this.segStartMs !== undefined) {
        this.silentMs += FRAME_MS;
        if (this.silentMs >= this.hangoverMs) {
          const seg = this.segment(this.segStartMs);
          if (seg.endMs - seg.startMs >= this.minSpeechMs) ended.push(seg);
          this.segStartMs = undefined;
        }
      }
    }
    this.carry = all.slice(off);
    return { ended, started };
  }

  private segment(startMs: number): VoicedSegment {
    const v = this.lastVoiced;
    return { startMs, endMs: this.lastVoicedEndMs, ...(v ? { heardAtMs: v.atMs, lastFrame: v.frame } : {}) };
  }

  /** Ends the segment in progress (Finalize, CloseStream): returned when it is long enough. */
  flush(): VoicedSegment | undefined {
    if (this.segStartMs === undefined) return undefined;
    const seg = this.segment(this.segStartMs);
    this.segStartMs = undefined;
    return seg.endMs - seg.startMs >= this.minSpeechMs ? seg : undefined;
  }
}

function rms(f: Int16Array): number {
  let s = 0;
  for (const v of f) s += v * v;
  return Math.sqrt(s / Math.max(1, f.length));
}

/** The voiced segments of a whole clip (with enough silence after it to end the last one). */
export function voicedSegments(pcm: Int16Array, sampleRate: number, opts: EnergyOptions = {}): VoicedSegment[] {
  const seg = new EnergySegmenter(sampleRate, opts);
  const out = seg.push(pcm).ended;
  const tail = seg.flush();
  return tail ? [...out, tail] : out;
}

/** Words registered for clips, matched to live segments by voiced length. */
export class PhraseBook {
  private readonly phrases: Array<{ text: string; spanMs: number }> = [];

  constructor(private readonly opts: EnergyOptions = {}) {}

  /** The words of a clip (its audio is measured the way live audio will be). */
  register(text: string, pcm: Int16Array, sampleRate: number): void {
    const segs = voicedSegments(pcm, sampleRate, this.opts);
    if (segs.length === 0) throw new Error(`register(${JSON.stringify(text)}): the clip has no voiced audio`);
    this.phrases.push({ text, spanMs: segs.at(-1)!.endMs - segs[0]!.startMs });
  }

  /** The registered words whose voiced length is closest to the segment's (within 25 % or 300 ms), else undefined. */
  match(seg: VoicedSegment): string | undefined {
    const len = seg.endMs - seg.startMs;
    let best: { text: string; d: number } | undefined;
    for (const p of this.phrases) {
      const d = Math.abs(p.spanMs - len);
      if (d <= Math.max(300, p.spanMs * 0.25) && (!best || d < best.d)) best = { text: p.text, d };
    }
    return best?.text;
  }
}
