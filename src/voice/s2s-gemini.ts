/**
 * Gemini Live (the Gemini API's `BidiGenerateContent` WebSocket) through the official
 * `@google/genai` SDK (`ai.live.connect`). Loaded only by s2s-load.ts.
 *
 * The SDK builds `<ws|wss>://<base>/ws/google.ai.generativelanguage.<apiVersion>.GenerativeService.
 * BidiGenerateContent?key=<key>` from `httpOptions.baseUrl` (`http:` becomes `ws:`, anything else
 * `wss:`: `getWebsocketBaseUrl` in dist/node/index.cjs), sends the `setup` message and resolves once
 * `setupComplete` arrives. It never settles when the socket fails before that (it awaits `onopen`),
 * so the failure is taken from `onerror` / `onclose` here.
 *
 * Audio: the caller's frames go up as 16 kHz PCM16 (`audio/pcm;rate=16000`, `realtimeInput.audio`);
 * the model answers 24 kHz PCM16 (`inlineData` parts). Turns: Gemini's automatic activity
 * detection; a barge-in arrives as `serverContent.interrupted` (Gemini reports no end of the
 * caller's speech, so `speech-stopped` never comes). Gemini keeps in its history only what it sent
 * before the interruption, and has no truncate message: `truncate` is a no-op. Tools:
 * `toolCall.functionCalls`, answered with `toolResponse.functionResponses` (the model goes on by
 * itself). Sources: docs/voice.md, "Gemini Live".
 */
import type { LiveServerMessage, Session } from '@google/genai';
import { resample } from './resample.js';
import { base64ToPcm, pcmToBase64, S2sError, type S2sEvent, type S2sOptions, type S2sProvider, type S2sSession } from './s2s.js';

const IN_RATE = 16_000;
const OUT_RATE = 24_000;
const OPEN_TIMEOUT_MS = 10_000;

export interface GeminiLiveInit {
  apiKey: string;
  /** The API base (`https://generativelanguage.googleapis.com` unless set); `http://` means plain ws://. */
  baseUrl?: string;
}

/** A close before or during the session as an S2sError: 1007 (bad key, bad setup) is for good, 1011 (quota, internal) may pass. */
function closeError(code: number, reason: string): S2sError {
  const quota = /quota|RESOURCE_EXHAUSTED|rate/i.test(reason);
  return new S2sError(`Gemini Live closed the connection (${code}${reason ? `: ${reason}` : ''})`, {
    retryable: code === 1011 || code === 1006 || quota,
    status: code,
    ...(quota ? { vendorCode: 'RESOURCE_EXHAUSTED' } : {}),
  });
}

export function geminiLiveProvider(init: GeminiLiveInit): S2sProvider {
  return {
    name: 'gemini',
    async open(opts) {
      const { GoogleGenAI, Modality } = await import('@google/genai');
      const ai = new GoogleGenAI({ apiKey: init.apiKey, ...(init.baseUrl ? { httpOptions: { baseUrl: init.baseUrl } } : {}) });
      const state = { ready: false, closing: false, turn: 0 };
      let failEarly: (err: S2sError) => void = () => undefined;
      const early = new Promise<never>((_, reject) => (failEarly = reject));
      early.catch(() => undefined);
      const timer = setTimeout(
        () => failEarly(new S2sError(`Gemini Live: no setupComplete after ${OPEN_TIMEOUT_MS} ms`, { retryable: true })),
        OPEN_TIMEOUT_MS,
      );
      const fail = (err: S2sError) => (state.ready ? !state.closing && opts.onEvent({ type: 'error', error: err }) : failEarly(err));
      const connecting = ai.live.connect({
        model: opts.model,
        config: liveConfig(opts, Modality.AUDIO),
        callbacks: {
          onmessage: (m) => relay(m, state, opts.onEvent),
          onerror: (e) => fail(new S2sError(`Gemini Live: ${e.message}`, { retryable: true, ...statusOf(e.message) })),
          onclose: (e) => fail(closeError(e.code, e.reason)),
        },
      });
      let live: Session;
      try {
        live = await Promise.race([connecting, early]);
      } finally {
        clearTimeout(timer);
      }
      state.ready = true;
      return session(live, state, opts.signal);
    },
  };
}

function statusOf(message: string): { status?: number } {
  const m = /Unexpected server response: (\d{3})/.exec(message);
  return m ? { status: Number(m[1]) } : {};
}

function liveConfig(opts: S2sOptions, audio: import('@google/genai').Modality): import('@google/genai').LiveConnectConfig {
  return {
    responseModalities: [audio],
    ...(opts.voice ? { speechConfig: { voiceConfig: { prebuiltVoiceConfig: { voiceName: opts.voice } } } } : {}),
    ...(opts.instructions ? { systemInstruction: opts.instructions } : {}),
    outputAudioTranscription: {},
    realtimeInputConfig: { automaticActivityDetection: { silenceDurationMs: opts.silenceMs ?? 500 } },
    ...(opts.tools?.length
      ? {
          tools: [
            {
              functionDeclarations: opts.tools.map((t) => ({
                name: t.name,
                description: t.description ?? '',
                parametersJsonSchema: t.parameters,
              })),
            },
          ],
        }
      : {}),
  };
}

function session(live: Session, state: { closing: boolean; turn: number }, signal: AbortSignal | undefined): S2sSession {
  const s: S2sSession = {
    id: undefined,
    sendAudio(pcm, sampleRate) {
      if (state.closing) return;
      live.sendRealtimeInput({ audio: { data: pcmToBase64(resample(pcm, sampleRate, IN_RATE)), mimeType: `audio/pcm;rate=${IN_RATE}` } });
    },
    sendText(text) {
      live.sendClientContent({ turns: [{ role: 'user', parts: [{ text }] }], turnComplete: true });
    },
    respond(instructions) {
      live.sendClientContent({ turns: [{ role: 'user', parts: [{ text: instructions ?? 'Greet the caller.' }] }], turnComplete: true });
    },
    toolResults(results) {
      live.sendToolResponse({ functionResponses: results.map((r) => ({ id: r.callId, name: r.name, response: { output: r.output } })) });
    },
    truncate() {
      // Gemini keeps only what it sent before the interruption, and has no truncate message.
    },
    close() {
      if (state.closing) return;
      state.closing = true;
      live.close();
    },
  };
  signal?.addEventListener('abort', () => s.close(), { once: true });
  return s;
}

/** One server message as what the pipeline needs of it. */
function relay(m: LiveServerMessage, state: { turn: number }, emit: (ev: S2sEvent) => void): void {
  const c = m.serverContent;
  if (c?.interrupted) {
    emit({ type: 'speech-started', atMs: Date.now() });
    state.turn++;
  }
  const itemId = `gemini-turn-${state.turn}`;
  for (const p of c?.modelTurn?.parts ?? []) {
    if (p.inlineData?.data && p.inlineData.mimeType?.startsWith('audio/pcm'))
      emit({ type: 'audio', itemId, pcm: base64ToPcm(p.inlineData.data), sampleRate: rateOf(p.inlineData.mimeType) });
  }
  if (c?.outputTranscription?.text) emit({ type: 'transcript', itemId, delta: c.outputTranscription.text });
  if (c?.turnComplete) {
    emit({ type: 'response-done', status: c.interrupted ? 'cancelled' : 'completed' });
    state.turn++;
  }
  const calls = m.toolCall?.functionCalls ?? [];
  if (calls.length > 0) {
    for (const f of calls) emit({ type: 'tool-call', callId: f.id ?? '', name: f.name ?? '', args: JSON.stringify(f.args ?? {}) });
    emit({ type: 'response-done', status: 'tool' });
  }
}

function rateOf(mime: string): number {
  const m = /rate=(\d+)/.exec(mime);
  return m ? Number(m[1]) : OUT_RATE;
}
