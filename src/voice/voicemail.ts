/**
 * Answering-machine detection from the first seconds of the far end's audio (issue 26): is the
 * answer a person or a machine, and when may a message be left?
 *
 *  - a beep detector: Goertzel filters from 900 to 2 100 Hz, every 20 ms block; a block is tonal
 *    when one frequency holds most of its energy, and a beep is ≥ `beepMinMs` of tonal blocks at
 *    the same frequency (± one filter). Speech never holds one pure frequency that long.
 *  - the greeting's shape: voiced blocks (RMS over `speechRms`), joined across pauses shorter than
 *    `gapMs`. Long continuous speech (≥ `machineSpeechMs`) is a recorded greeting; a short
 *    utterance ("hello?") followed by `personSilenceMs` of silence is a person waiting for an
 *    answer. Nothing said for `maxWaitMs`: `unknown` (treated like a person by callers).
 *
 * Once it says `machine`, it keeps listening until the message may be left (`recordFromMs`): the
 * end of the beep, or — without a beep — `personSilenceMs` of silence after the greeting.
 * Pure: PCM16 mono in, verdicts out; time is the audio's own (sample counts), never the clock.
 */

export type VoicemailKind = 'person' | 'machine' | 'unknown';

export interface VoicemailVerdict {
  kind: VoicemailKind;
  /** Why: `beep`, `long-greeting`, `short-greeting`, `silence`. */
  reason: 'beep' | 'long-greeting' | 'short-greeting' | 'silence';
  /** Audio time (ms from the first sample) when the verdict was reached. */
  atMs: number;
  /** Voiced time heard before the verdict. */
  speechMs: number;
  /** The beep's frequency (Hz), when one was heard. */
  beepHz?: number;
}

export interface VoicemailOptions {
  sampleRate: number;
  /** RMS (of 32 767) above which a block is voiced. Default 500. */
  speechRms?: number;
  /** Pauses shorter than this keep a greeting continuous. Default 700 ms. */
  gapMs?: number;
  /** Continuous speech this long is a recorded greeting. Default 2 400 ms. */
  machineSpeechMs?: number;
  /** Silence after a short utterance that makes it a person. Default 900 ms. */
  personSilenceMs?: number;
  /** Tonal blocks at one frequency for this long are a beep. Default 120 ms. */
  beepMinMs?: number;
  /** Nothing decided after this much audio: `unknown`. Default 6 000 ms. */
  maxWaitMs?: number;
}

const BLOCK_MS = 20;
const BEEP_LOW_HZ = 900;
const BEEP_HIGH_HZ = 2_100;
const BEEP_STEP_HZ = 25;
/** Share of a block's energy one Goertzel filter must hold for the block to be tonal. */
const TONAL_SHARE = 0.6;

/** Goertzel power of `f` Hz over `x`, normalised so that a pure tone at `f` gives ≈ its share 1 of the block's energy. */
export function goertzelShare(x: Int16Array | Float64Array, f: number, sampleRate: number, energy: number): number {
  const w = (2 * Math.PI * f) / sampleRate;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) {
    const s0 = x[i]! + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - c * s1 * s2;
  return energy > 0 ? power / ((x.length / 2) * energy) : 0;
}

/** The strongest frequency of the beep band in a block and its share of the block's energy. */
export function strongestTone(block: Int16Array, sampleRate: number): { hz: number; share: number; rms: number } {
  let energy = 0;
  for (let i = 0; i < block.length; i++) energy += block[i]! * block[i]!;
  const rms = Math.sqrt(energy / Math.max(1, block.length));
  let best = { hz: 0, share: 0, rms };
  if (rms === 0) return best;
  for (let f = BEEP_LOW_HZ; f <= BEEP_HIGH_HZ; f += BEEP_STEP_HZ) {
    const share = goertzelShare(block, f, sampleRate, energy);
    if (share > best.share) best = { hz: f, share, rms };
  }
  return best;
}

export class VoicemailDetector {
  private readonly o: Required<VoicemailOptions>;
  private readonly blockSamples: number;
  private pending = new Int16Array(0);
  private blocks = 0;
  private speechBlocks = 0;
  /** The current voiced run: first and last voiced block (block indexes). */
  private runStart = -1;
  private lastVoiced = -1;
  private longestRunMs = 0;
  private tone: { hz: number; blocks: number } | undefined;
  private beep: { hz: number; endedAt: number | undefined } | undefined;
  private decided: VoicemailVerdict | undefined;
  private recordAt: number | undefined;

  constructor(opts: VoicemailOptions) {
    this.o = {
      speechRms: 500,
      gapMs: 700,
      machineSpeechMs: 2_400,
      personSilenceMs: 900,
      beepMinMs: 120,
      maxWaitMs: 6_000,
      ...opts,
    };
    this.blockSamples = Math.round((this.o.sampleRate * BLOCK_MS) / 1000);
  }

  /** The verdict, once reached. */
  get verdict(): VoicemailVerdict | undefined {
    return this.decided;
  }

  /** For a machine: audio time (ms) from which a message may be left (after the beep, or the greeting's end). */
  get recordFromMs(): number | undefined {
    return this.recordAt;
  }

  /** Audio heard so far (ms). */
  get heardMs(): number {
    return this.blocks * BLOCK_MS;
  }

  /** Feeds audio (any length); returns the verdict once there is one. */
  push(pcm: Int16Array): VoicemailVerdict | undefined {
    const all = new Int16Array(this.pending.length + pcm.length);
    all.set(this.pending);
    all.set(pcm, this.pending.length);
    let off = 0;
    for (; off + this.blockSamples <= all.length; off += this.blockSamples) this.block(all.subarray(off, off + this.blockSamples));
    this.pending = all.slice(off);
    return this.decided;
  }

  private block(b: Int16Array): void {
    const i = this.blocks++;
    const t = strongestTone(b, this.o.sampleRate);
    const voiced = t.rms >= this.o.speechRms;
    this.trackBeep(i, voiced && t.share >= TONAL_SHARE ? t.hz : undefined);
    if (voiced && !this.tone) this.trackSpeech(i);
    if (!this.decided) this.decide(i);
    else if (this.decided.kind === 'machine' && this.recordAt === undefined) this.awaitRecord(i);
  }

  private trackBeep(i: number, hz: number | undefined): void {
    const minBlocks = Math.ceil(this.o.beepMinMs / BLOCK_MS);
    if (hz !== undefined && this.tone && Math.abs(this.tone.hz - hz) <= BEEP_STEP_HZ) this.tone.blocks++;
    else {
      if (this.tone && this.tone.blocks >= minBlocks && this.beep) this.beep.endedAt = i * BLOCK_MS;
      this.tone = hz === undefined ? undefined : { hz, blocks: 1 };
    }
    if (this.tone && this.tone.blocks === minBlocks && !this.beep) this.beep = { hz: this.tone.hz, endedAt: undefined };
  }

  private trackSpeech(i: number): void {
    const gapBlocks = Math.ceil(this.o.gapMs / BLOCK_MS);
    if (this.runStart < 0 || i - this.lastVoiced > gapBlocks) this.runStart = i;
    this.lastVoiced = i;
    this.speechBlocks++;
    this.longestRunMs = Math.max(this.longestRunMs, (i - this.runStart + 1) * BLOCK_MS);
  }

  private decide(i: number): void {
    const atMs = (i + 1) * BLOCK_MS;
    const speechMs = this.speechBlocks * BLOCK_MS;
    if (this.beep) {
      this.decided = { kind: 'machine', reason: 'beep', atMs, speechMs, beepHz: this.beep.hz };
      return this.awaitRecord(i);
    }
    if (this.longestRunMs >= this.o.machineSpeechMs) {
      this.decided = { kind: 'machine', reason: 'long-greeting', atMs, speechMs };
      return this.awaitRecord(i);
    }
    const silentMs = this.lastVoiced < 0 ? atMs : (i - this.lastVoiced) * BLOCK_MS;
    if (this.lastVoiced >= 0 && silentMs >= this.o.personSilenceMs) {
      this.decided = { kind: 'person', reason: 'short-greeting', atMs, speechMs };
    } else if (atMs >= this.o.maxWaitMs) {
      this.decided = { kind: this.lastVoiced < 0 ? 'unknown' : 'person', reason: 'silence', atMs, speechMs };
    }
  }

  /** A machine: the message may start after the beep, or after the greeting and a pause without one. */
  private awaitRecord(i: number): void {
    if (this.beep) {
      // A beep after a long greeting: that is what the message waits for.
      if (this.decided && this.decided.reason !== 'beep') this.decided = { ...this.decided, reason: 'beep', beepHz: this.beep.hz };
      if (this.beep.endedAt !== undefined) this.recordAt = this.beep.endedAt;
      return;
    }
    if (!this.tone && this.lastVoiced >= 0 && (i - this.lastVoiced) * BLOCK_MS >= this.o.personSilenceMs)
      this.recordAt = (i + 1) * BLOCK_MS;
  }
}
