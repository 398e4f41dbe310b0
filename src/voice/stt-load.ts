import { SttError, type SttInit, type SttProvider, type SttProviderName } from './stt.js';

/**
 * The streaming provider `name`, with its vendor's SDK loaded now (nothing else imports the
 * provider files, so the main process and workers that never use one do not load it).
 * Rejects with a non-retryable SttError when the vendor has no key.
 */
export async function loadStt(name: Exclude<SttProviderName, 'daily'>, init: SttInit): Promise<SttProvider> {
  if (name === 'deepgram') {
    if (!init.deepgram) throw new SttError('Deepgram speech-to-text needs DEEPGRAM_API_KEY');
    const { deepgramStt } = await import('./stt-deepgram.js');
    return deepgramStt(init.deepgram);
  }
  if (name === 'assemblyai') {
    if (!init.assemblyai) throw new SttError('AssemblyAI speech-to-text needs ASSEMBLYAI_API_KEY');
    const { assemblyAiStt } = await import('./stt-assemblyai.js');
    const base = init.assemblyai.baseUrl?.replace(/^https:/i, 'wss:').replace(/\/+$/, '');
    return assemblyAiStt({ apiKey: init.assemblyai.apiKey, ...(base ? { streamingUrl: `${base}/v3/ws` } : {}) });
  }
  if (name === 'openai') {
    if (!init.openai) throw new SttError('OpenAI speech-to-text needs OPENAI_API_KEY');
    const { openAiStt } = await import('./stt-openai.js');
    return openAiStt(init.openai);
  }
  throw new SttError(`speech-to-text provider ${String(name)} is not available`);
}
