/**
 * Text-to-speech providers. `say(text)` asks the provider for PCM and plays it.
 * The default provider returns no audio and lets the call client carry the words (the emulator
 * shows them to the caller); real providers produce PCM16 mono.
 */
export interface SpeechAudio {
  pcm: Int16Array;
  sampleRate: number;
}

export interface TtsProvider {
  readonly name: string;
  synthesize(text: string, signal?: AbortSignal): Promise<SpeechAudio>;
}

/** No audio: only the text travels. Good for the emulator and tests. */
export const textOnlyTts: TtsProvider = {
  name: 'text',
  async synthesize() {
    return { pcm: new Int16Array(0), sampleRate: 16_000 };
  },
};
