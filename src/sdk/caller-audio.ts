/**
 * The caller's audio as the bot's listeners get it (issue 22 items 3–5): only the caller's frames,
 * after noise suppression when the bot asked for it (`noiseSuppression: true`, RNNoise,
 * src/voice/denoise.ts), fanned out to every consumer in order: voice activity, the end-of-turn
 * model's buffer, a streaming speech-to-text provider.
 *
 * Started once per call; `receiveAudio(true)` is asked of the call client on the first start.
 */
import type { Logger } from 'pino';
import type { CallClient } from '../daily/call-client.js';
import { NoiseSuppressor } from '../voice/denoise.js';
import { errorMessage } from '../core/errors.js';

export type CallerAudioListener = (pcm: Int16Array, sampleRate: number) => void;

export interface CallerAudioDeps {
  client: CallClient;
  callerSessionId(): string | undefined;
  signal: AbortSignal;
  logger: Logger;
  noiseSuppression: boolean;
  /** A line for the call's timeline (whether noise suppression runs). */
  report(value: string): void;
}

export class CallerAudio {
  private readonly listeners = new Set<CallerAudioListener>();
  private started: Promise<void> | undefined;
  private denoiser: NoiseSuppressor | undefined;

  constructor(private readonly deps: CallerAudioDeps) {}

  /** Adds a consumer of the caller's (denoised) frames; returns its removal. */
  on(fn: CallerAudioListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Subscribes to the call's audio once (loading RNNoise first when asked); idempotent. */
  start(): Promise<void> {
    this.started ??= this.begin().catch((err: unknown) => {
      this.started = undefined;
      throw err;
    });
    return this.started;
  }

  private async begin(): Promise<void> {
    const d = this.deps;
    if (d.noiseSuppression) {
      try {
        this.denoiser = await NoiseSuppressor.create();
        d.report('noise suppression on (rnnoise)');
      } catch (err) {
        d.logger.warn({ err }, 'noise suppression could not start; the caller is heard without it');
        d.report(`noise suppression off: ${errorMessage(err)}`);
      }
    }
    const off = d.client.on('audio-frame', (f) => {
      if (d.signal.aborted) return;
      const caller = d.callerSessionId();
      if (caller && f.participantId !== caller) return;
      const pcm = this.denoiser ? this.denoiser.process(f.pcm, f.sampleRate) : f.pcm;
      for (const fn of this.listeners) fn(pcm, f.sampleRate);
    });
    d.signal.addEventListener(
      'abort',
      () => {
        off();
        this.denoiser?.close();
      },
      { once: true },
    );
    await d.client.receiveAudio(true);
  }
}
