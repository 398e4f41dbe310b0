import { S2sError, type S2sInit, type S2sProvider, type S2sProviderName } from './s2s.js';

/**
 * The speech-to-speech provider `name`, with its vendor's SDK loaded now (nothing else imports the
 * provider files: the main process and workers of other bots never load them). Rejects with a
 * non-retryable S2sError when the vendor has no key.
 */
export async function loadS2s(name: S2sProviderName, init: S2sInit): Promise<S2sProvider> {
  if (name === 'openai') {
    if (!init.openai) throw new S2sError('OpenAI Realtime needs OPENAI_API_KEY');
    const { openaiRealtimeProvider } = await import('./s2s-openai.js');
    return openaiRealtimeProvider(init.openai);
  }
  if (!init.gemini) throw new S2sError('Gemini Live needs GEMINI_API_KEY (or GOOGLE_API_KEY)');
  const { geminiLiveProvider } = await import('./s2s-gemini.js');
  return geminiLiveProvider(init.gemini);
}
