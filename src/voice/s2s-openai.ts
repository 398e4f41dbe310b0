/**
 * OpenAI's Realtime API (GA, `session.type: 'realtime'`) over its WebSocket, through the official
 * `openai` SDK's `OpenAIRealtimeWS` (openai/realtime/ws; it builds `wss://<base>/realtime?model=`
 * from the client's `baseURL` and sends `Authorization: Bearer <key>`). Loaded only by s2s-load.ts.
 *
 * Audio: PCM16 24 kHz both ways (`audio/pcm`, the only PCM rate the API takes); the caller's frames
 * are resampled up from the call's rate. Turns: the server's VAD (`server_vad`, which also cancels
 * the answer in progress when the caller speaks). Tools: `function_call` items in `response.done`;
 * their results go back as `function_call_output` items, then `response.create`.
 * Wire format sources: docs/voice.md, "Speech-to-speech".
 */
import type { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type { RealtimeServerEvent } from 'openai/resources/realtime/realtime';
import { errorMessage } from '../core/errors.js';
import { resample } from './resample.js';
import { base64ToPcm, pcmToBase64, S2sError, type S2sEvent, type S2sOptions, type S2sProvider, type S2sSession } from './s2s.js';

export const OPENAI_RATE = 24_000;
const OPEN_TIMEOUT_MS = 10_000;

export interface OpenAiRealtimeInit {
  apiKey: string;
  /** The API base (`https://api.openai.com/v1` unless set); the SDK always speaks wss:// to it. */
  baseUrl?: string;
}

/** An error event or a socket failure as an S2sError (status from a refused upgrade, code from the event). */
function toS2sError(err: { message: string; error?: { code?: string | null; type?: string } | undefined }): S2sError {
  const status = /Unexpected server response: (\d{3})/.exec(err.message)?.[1];
  const code = err.error?.code ?? undefined;
  const retryable = status === '429' || code === 'rate_limit_exceeded' || (status !== undefined && Number(status) >= 500);
  return new S2sError(`OpenAI Realtime: ${err.message.split('\n')[0]}`, {
    retryable,
    ...(status ? { status: Number(status) } : {}),
    ...(code ? { vendorCode: code } : {}),
    cause: err,
  });
}

export function openaiRealtimeProvider(init: OpenAiRealtimeInit): S2sProvider {
  return {
    name: 'openai',
    async open(opts) {
      const [{ OpenAI }, { OpenAIRealtimeWS: Ws }] = await Promise.all([import('openai'), import('openai/realtime/ws')]);
      const client = new OpenAI({ apiKey: init.apiKey, baseURL: init.baseUrl ?? 'https://api.openai.com/v1', maxRetries: 0 });
      const rt = new Ws({ model: opts.model }, client);
      return connect(rt, opts);
    },
  };
}

function sessionConfig(opts: S2sOptions): Record<string, unknown> {
  return {
    type: 'realtime',
    model: opts.model,
    output_modalities: ['audio'],
    ...(opts.instructions ? { instructions: opts.instructions } : {}),
    audio: {
      input: {
        format: { type: 'audio/pcm', rate: OPENAI_RATE },
        turn_detection: { type: 'server_vad', silence_duration_ms: opts.silenceMs ?? 500, create_response: true, interrupt_response: true },
      },
      output: { format: { type: 'audio/pcm', rate: OPENAI_RATE }, ...(opts.voice ? { voice: opts.voice } : {}) },
    },
    tools: (opts.tools ?? []).map((t) => ({ type: 'function', name: t.name, description: t.description ?? '', parameters: t.parameters })),
  };
}

interface ConnState {
  ready: boolean;
  failed: boolean;
  closing: boolean;
  sessionId: string | undefined;
}

/** Waits for the socket and `session.updated`; then relays the server's events as S2sEvents. */
async function connect(
  rt: OpenAIRealtimeWS,
  opts: S2sOptions & { onEvent: (ev: S2sEvent) => void; signal?: AbortSignal },
): Promise<S2sSession> {
  const st: ConnState = { ready: false, failed: false, closing: false, sessionId: undefined };
  const fail = (err: S2sError): void => {
    if (st.failed) return;
    st.failed = true;
    if (st.ready) opts.onEvent({ type: 'error', error: err });
    rt.close({ code: 1000, reason: 'failed' });
  };
  const opened = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new S2sError(`OpenAI Realtime: no session after ${OPEN_TIMEOUT_MS} ms`, { retryable: true })),
      OPEN_TIMEOUT_MS,
    );
    rt.on('error', (err) => {
      const e = toS2sError(err);
      // Most error events leave the session open (OpenAI's server-events reference): told, not fatal.
      if (st.ready && err.error) return opts.onEvent({ type: 'warning', message: e.message });
      clearTimeout(timer);
      if (!st.ready) reject(e);
      fail(e);
    });
    rt.socket.on('open', () => rt.send({ type: 'session.update', session: sessionConfig(opts) } as never));
    rt.on('session.updated', () => {
      clearTimeout(timer);
      st.ready = true;
      resolve();
    });
    rt.socket.on('close', (code: number, reason: Buffer) => {
      clearTimeout(timer);
      const e = new S2sError(`OpenAI Realtime: the connection closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`, {
        retryable: true,
        status: code,
      });
      if (!st.ready) reject(e);
      else if (!st.closing) fail(e);
    });
  });
  rt.on('session.created', (ev) => (st.sessionId = (ev.session as { id?: string }).id)); // the API sends `sess_…`; the SDK's type omits it
  rt.on('event', (ev) => relay(ev, opts.onEvent));
  const session = sessionOf(rt, st);
  opts.signal?.addEventListener('abort', () => session.close(), { once: true });
  try {
    await opened;
  } catch (err) {
    st.closing = true;
    rt.socket.terminate();
    throw err;
  }
  return session;
}

/** The session's client events over the SDK's socket. */
function sessionOf(rt: OpenAIRealtimeWS, st: ConnState): S2sSession {
  return {
    get id() {
      return st.sessionId;
    },
    sendAudio(pcm, sampleRate) {
      if (!st.ready || st.failed || st.closing) return;
      rt.send({ type: 'input_audio_buffer.append', audio: pcmToBase64(resample(pcm, sampleRate, OPENAI_RATE)) });
    },
    sendText(text) {
      rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
      rt.send({ type: 'response.create' });
    },
    respond(instructions) {
      rt.send({ type: 'response.create', ...(instructions ? { response: { instructions } } : {}) });
    },
    toolResults(results) {
      for (const r of results)
        rt.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: r.callId, output: r.output } });
      rt.send({ type: 'response.create' });
    },
    truncate(itemId, audioEndMs) {
      rt.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: Math.max(0, Math.floor(audioEndMs)) });
    },
    close() {
      if (st.closing) return;
      st.closing = true;
      try {
        rt.close({ code: 1000, reason: 'call ended' });
      } catch (err) {
        void errorMessage(err);
      }
    },
  };
}

/** One server event as what the pipeline needs of it. */
function relay(ev: RealtimeServerEvent, emit: (ev: S2sEvent) => void): void {
  switch (ev.type) {
    case 'input_audio_buffer.speech_started':
      return emit({ type: 'speech-started', atMs: Date.now() });
    case 'input_audio_buffer.speech_stopped':
      return emit({ type: 'speech-stopped', atMs: Date.now() });
    case 'response.output_audio.delta':
      return emit({ type: 'audio', itemId: ev.item_id, pcm: base64ToPcm(ev.delta), sampleRate: OPENAI_RATE });
    case 'response.output_audio_transcript.delta':
      return emit({ type: 'transcript', itemId: ev.item_id, delta: ev.delta });
    case 'response.done': {
      for (const item of ev.response.output ?? []) {
        if (item.type === 'function_call' && item.call_id && item.name)
          emit({ type: 'tool-call', callId: item.call_id, name: item.name, args: item.arguments ?? '{}' });
      }
      return emit({ type: 'response-done', status: ev.response.status ?? 'completed' });
    }
    default:
      return;
  }
}
