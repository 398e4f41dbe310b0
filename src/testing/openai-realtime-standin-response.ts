/**
 * The OpenAI Realtime stand-in's responses (openai-realtime-standin.ts): the session it starts
 * with, an answer streamed as audio deltas with their transcript deltas (real espeak-ng speech,
 * paced), and function call items. Sources: docs/voice.md, "Speech-to-speech".
 */
import { pcmToBase64 } from '../voice/s2s.js';
import { sleep, speechFor } from './tts-standin-audio.js';

export const RATE = 24_000;

/** What made the stand-in answer: the caller's speech (its voiced length), text, a tool's output, or response.create alone. */
export interface RealtimeTurn {
  index: number;
  trigger: 'speech' | 'text' | 'tool' | 'create';
  text?: string;
  tool?: { name: string; output: string };
  voicedMs?: number;
}

export interface RealtimeReply {
  say?: string;
  call?: { name: string; arguments?: Record<string, unknown> };
}

export interface RealtimeResponse {
  id: string;
  itemId?: string;
  text: string;
  audioMs: number;
  status: 'in_progress' | 'completed' | 'cancelled';
  /** Epoch ms: the trigger, and the first audio delta sent. */
  triggeredAt: number;
  firstAudioAt?: number;
}

export interface Item {
  id: string;
  role: 'user' | 'assistant' | 'tool';
  audioMs: number;
}

let seq = 0;
export const id = (p: string) => `${p}_${(++seq).toString(36).padStart(6, '0')}`;

export const defaultSession = (model: string) => ({
  type: 'realtime',
  object: 'realtime.session',
  id: id('sess'),
  model,
  output_modalities: ['audio'],
  instructions: '',
  tools: [],
  audio: {
    input: {
      format: { type: 'audio/pcm', rate: RATE },
      turn_detection: {
        type: 'server_vad',
        threshold: 0.5,
        prefix_padding_ms: 300,
        silence_duration_ms: 500,
        create_response: true,
        interrupt_response: true,
      },
    },
    output: { format: { type: 'audio/pcm', rate: RATE }, voice: 'alloy', speed: 1 },
  },
});

/** What streaming needs of the connection. */
export interface StreamCtx {
  send(ev: Record<string, unknown>): void;
  items: Map<string, Item>;
  /** The function calls made: call id to name. */
  calls: Map<string, string>;
  chunkMs: number;
  chunkGapMs: number;
  /** After each audio delta: true when the connection was cut there (a `drop` fault). */
  dropped(): boolean;
}

/** Streams `text` as the response's audio item; stops early when the response is cancelled (barge-in). */
export async function speak(ctx: StreamCtx, r: RealtimeResponse, text: string): Promise<Record<string, unknown>> {
  const itemId = id('item');
  r.itemId = itemId;
  const item: Item = { id: itemId, role: 'assistant', audioMs: 0 };
  ctx.items.set(itemId, item);
  const base = { response_id: r.id, item_id: itemId, output_index: 0, content_index: 0 };
  ctx.send({
    type: 'response.output_item.added',
    response_id: r.id,
    output_index: 0,
    item: { id: itemId, type: 'message', role: 'assistant', status: 'in_progress', content: [] },
  });
  ctx.send({ type: 'response.content_part.added', ...base, part: { type: 'audio', transcript: '' } });
  const speech = await speechFor(text, RATE);
  const step = Math.round((RATE * ctx.chunkMs) / 1000);
  let w = 0;
  for (let off = 0; off < speech.pcm.length && r.status === 'in_progress'; off += step) {
    const endMs = ((off + step) / RATE) * 1000;
    const words: string[] = [];
    for (; w < speech.words.length && speech.words[w]!.startMs < endMs; w++) words.push(speech.words[w]!.word);
    if (words.length) {
      const delta = (r.text ? ' ' : '') + words.join(' ');
      r.text += delta;
      ctx.send({ type: 'response.output_audio_transcript.delta', ...base, delta });
    }
    const chunk = speech.pcm.subarray(off, Math.min(off + step, speech.pcm.length));
    r.firstAudioAt ??= Date.now();
    ctx.send({ type: 'response.output_audio.delta', ...base, delta: pcmToBase64(chunk) });
    item.audioMs += (chunk.length / RATE) * 1000;
    r.audioMs = item.audioMs;
    if (ctx.dropped()) return {};
    await sleep(ctx.chunkGapMs);
  }
  const status = r.status === 'in_progress' ? 'completed' : 'incomplete';
  if (status === 'completed') {
    ctx.send({ type: 'response.output_audio.done', ...base });
    ctx.send({ type: 'response.output_audio_transcript.done', ...base, transcript: r.text });
    ctx.send({ type: 'response.content_part.done', ...base, part: { type: 'audio', transcript: r.text } });
  }
  const done = { id: itemId, type: 'message', role: 'assistant', status, content: [{ type: 'output_audio', transcript: r.text }] };
  ctx.send({ type: 'response.output_item.done', response_id: r.id, output_index: 0, item: done });
  return done;
}

export function functionCall(
  ctx: StreamCtx,
  r: RealtimeResponse,
  call: { name: string; arguments?: Record<string, unknown> },
): Record<string, unknown> {
  const callId = id('call');
  ctx.calls.set(callId, call.name);
  const args = JSON.stringify(call.arguments ?? {});
  const item = { id: id('item'), type: 'function_call', status: 'completed', name: call.name, call_id: callId, arguments: args };
  ctx.send({
    type: 'response.output_item.added',
    response_id: r.id,
    output_index: 1,
    item: { ...item, status: 'in_progress', arguments: '' },
  });
  ctx.send({
    type: 'response.function_call_arguments.delta',
    response_id: r.id,
    item_id: item.id,
    output_index: 1,
    call_id: callId,
    delta: args,
  });
  ctx.send({
    type: 'response.function_call_arguments.done',
    response_id: r.id,
    item_id: item.id,
    output_index: 1,
    call_id: callId,
    name: call.name,
    arguments: args,
  });
  ctx.send({ type: 'response.output_item.done', response_id: r.id, output_index: 1, item });
  return item;
}
