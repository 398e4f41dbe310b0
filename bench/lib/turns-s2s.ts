/**
 * The speech-to-speech rows of bench/turns.ts: the OpenAI Realtime and Gemini Live stand-ins, the
 * caller's script (out loud: the model's VAD hears the caller's audio) and what a call's
 * transcript and the stand-in's clocks say of each turn. Same machine, same clock (the emulator
 * and the stand-ins run in the bench's process).
 *
 * - End of the caller's speech: the stand-in's VAD ended the caller's turn (OpenAI:
 *   `speech_stopped` sent; Gemini: the answer started). Its `silenceMs` (500) of waiting is the
 *   vendor's, like the model's time to its first audio.
 * - Vendor: that moment → the stand-in sent its first audio delta (FIRST_AUDIO_MS, plus its own
 *   espeak-ng synthesis of the answer, cached after the first call): measured per turn.
 * - First bot audio: the emulator's caller got the answer's first words (they ride on its audio).
 *   Added = first bot audio − the first audio delta sent: the worker's WebSocket receive, decoding,
 *   resampling, the play-out queue and the send to the call.
 * - Barge-in: the stand-in's VAD heard the caller start (OpenAI `speech_started`, Gemini
 *   `interrupted`) → the emulator heard the bot's audio stop.
 */
import { startGeminiLiveStandIn, type GeminiConnection, type GeminiLiveStandIn } from '../../src/testing/gemini-live-standin.js';
import {
  startOpenAiRealtimeStandIn,
  type OpenAiRealtimeStandIn,
  type RealtimeConnection,
  type RealtimeReply,
  type RealtimeTurn,
} from '../../src/testing/openai-realtime-standin.js';
import type { CallerStep, TranscriptLine } from '../../src/emulator/types.js';

export const S2S_FIRST_AUDIO_MS = 200;
const PACE = { firstAudioMs: S2S_FIRST_AUDIO_MS, chunkMs: 100, chunkGapMs: 40 };

/** One model answer as the bench reads it, whichever the vendor. */
interface Answer {
  text: string;
  triggeredAt: number;
  firstAudioAt?: number | undefined;
}

export interface S2sStandIns {
  openai: OpenAiRealtimeStandIn;
  gemini: GeminiLiveStandIn;
  /** A connection's answers and the moments its VAD heard the caller start, by its index in `connections`. */
  connection(vendor: 'openai' | 'gemini', n: number): { answers: Answer[]; speechStartedAt: number[] } | undefined;
  close(): Promise<void>;
}

/**
 * The model greets with its connection's number (its index in the stand-in's `connections`, the
 * first word the caller hears, so a call's transcript names its connection), then answers each turn of the caller's with the
 * same words (espeak-ng's audio of them is cached after the first call).
 */
function respond(t: RealtimeTurn, index: number): RealtimeReply {
  if (t.trigger !== 'speech') return { say: `${index}, ready.` };
  return { say: 'Answer: here it is, thanks for asking. End of answer.' };
}

export async function startS2sStandIns(apiKey: string): Promise<S2sStandIns> {
  const openai: OpenAiRealtimeStandIn = await startOpenAiRealtimeStandIn({
    ...PACE,
    apiKey,
    respond: (t, c) => respond(t, openai.connections.indexOf(c)),
  });
  const gemini: GeminiLiveStandIn = await startGeminiLiveStandIn({
    ...PACE,
    respond: (t, c) => respond(t, gemini.connections.indexOf(c)),
  });
  const fromOpenai = (c: RealtimeConnection) => ({
    answers: c.responses.map((r) => ({ text: r.text, triggeredAt: r.triggeredAt, firstAudioAt: r.firstAudioAt })),
    speechStartedAt: c.speechStartedAt,
  });
  const fromGemini = (c: GeminiConnection) => ({ answers: c.answers, speechStartedAt: c.interruptedAt });
  return {
    openai,
    gemini,
    connection(vendor, n) {
      if (vendor === 'openai') {
        const c = openai.connections[n];
        return c && fromOpenai(c);
      }
      const c = gemini.connections[n];
      return c && fromGemini(c);
    },
    close: async () => {
      await Promise.all([openai.close(), gemini.close()]);
    },
  };
}

/** Out loud, alternating: one answer heard to its end, the next spoken over while it plays. */
export function s2sCallerScript(turns: number): CallerStep[] {
  const s: CallerStep[] = [{ waitFor: 'say', match: 'ready', timeoutMs: 60_000 }, { wait: 1_000 }];
  for (let t = 0; t < turns; t++) {
    s.push({ speak: 'What are your opening hours today?' });
    if (t === turns - 1 || t % 2 === 0) s.push({ waitFor: 'say', match: 'answer\\.', timeoutMs: 20_000 }, { wait: 1_000 });
    else s.push({ waitFor: 'say', match: 'here', timeoutMs: 20_000 }, { wait: 200 });
  }
  s.push({ hangup: true }); // the model would talk on
  return s;
}

/** A call's (or a batch's) turns, ms each. */
export interface TurnSpans {
  /** End of the caller's speech (the vendor's VAD) → first bot audio at the caller. */
  firstAudio: number[];
  /** The vendor's part of it (→ its first audio delta sent). */
  vendor: number[];
  added: number[];
  barge: number[];
}

/**
 * One call's turns: its transcript (lines stamped in epoch ms, as the stand-ins' clocks) matched to
 * its connection's answers (the k-th heard answer is the k-th answer with audio).
 */
export function s2sTurns(standIns: S2sStandIns, vendor: 'openai' | 'gemini', lines: TranscriptLine[]): TurnSpans {
  const out: TurnSpans = { firstAudio: [], vendor: [], added: [], barge: [] };
  const desk = /^(\d+)\b/.exec(lines.find((l) => l.who === 'bot')?.text ?? '')?.[1];
  const conn = desk === undefined ? undefined : standIns.connection(vendor, Number(desk));
  if (!conn) return out;
  const answers = conn.answers.filter((a) => a.text.startsWith('Answer') && a.firstAudioAt !== undefined);
  const heard = lines.filter((l) => l.who === 'bot' && /^Answer\b/.test(l.text));
  heard.forEach((l, k) => {
    const a = answers[k];
    if (!a || a.firstAudioAt === undefined) return;
    out.firstAudio.push(l.atMs - a.triggeredAt);
    out.vendor.push(a.firstAudioAt - a.triggeredAt);
    out.added.push(l.atMs - a.firstAudioAt);
  });
  for (const l of lines) {
    if (l.who !== 'system' || l.text !== 'bot audio interrupted') continue;
    const started = conn.speechStartedAt.filter((x) => x <= l.atMs).at(-1);
    if (started !== undefined) out.barge.push(l.atMs - started);
  }
  return out;
}

type Summary = { n: number; p50: number; p99: number; mean: number };

/** The rows side by side, one line each (the JSON after it has every figure). */
export function table(rows: Array<Record<string, unknown>>): void {
  const f = (x: unknown, k: 'p50' | 'p99' | 'mean') => ((x as Summary).n === 0 ? '–' : String((x as Summary)[k]));
  const lines = [
    '| pipeline | calls | vendors ms | first audio p50 | added p50 / p99 | records p50 / p99 | barge-in p50 / p99 | CPU ms / call | peak RSS MB |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${String(r.pipeline)} | ${String(r.calls)} | ${String(r.vendorMs)} | ${f(r.firstAudioMs, 'p50')} | ${f(r.addedMs, 'p50')} / ${f(r.addedMs, 'p99')} | ${f(r.addedByRecordsMs, 'p50')} / ${f(r.addedByRecordsMs, 'p99')} | ${f(r.bargeInToSilentMs, 'p50')} / ${f(r.bargeInToSilentMs, 'p99')} | ${f(r.cpuMsPerCall, 'mean')} | ${f(r.peakRssMbPerCall, 'mean')} |`,
    ),
  ];
  console.log(lines.join('\n'));
}
