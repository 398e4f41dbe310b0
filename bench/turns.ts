/**
 * Conversational turns per pipeline, side by side in one run (issue 23): the end of the caller's
 * speech → the first bot audio, patchbay's own share of it beyond the vendors' latencies, barge-in
 * → bot silent, and CPU and memory per call, at 1 and 10 simultaneous calls.
 *
 *   npx tsx bench/turns.ts [--levels 1,10] [--turns 8]
 *       [--pipelines cascade-cartesia,cascade-elevenlabs,cascade-espeak,s2s-openai,s2s-gemini]
 *
 * One service (the emulator, real worker processes) runs every pipeline, each a bench bot
 * (bench/bots/turns-*.ts) on its own number.
 *
 * Cascade rows (a bot choosing its TTS with `tts:`): the LLM is the OpenAI stand-in (first token
 * after LLM_FIRST_TOKEN_MS, then LLM_TOKENS_PER_SEC); Cartesia and ElevenLabs are their stand-ins
 * (first audio of a context TTS_FIRST_CHUNK_MS after its text); espeak-ng runs for real (its
 * synthesis of the first piece, from each turn's record, counts as the vendor's). TTS_CACHE_ENTRIES=0:
 * the answers repeat, and a cached first word would hide the TTS.
 * - The caller is the emulator's text caller: its words reach the bot as Daily's transcript at once,
 *   so the end of its speech is its transcript line; first audio is the bot's first words reaching it.
 * - Added = that span − the vendors' part: the LLM's first token (it completes the first word, the
 *   first piece said) + the TTS's first audio. A call's first turn is left out of this span: its
 *   transcript also waits for the emulator's transcription to start (≈ 0.4 s); the records' turns
 *   (transcript → first frame sent, patchbay's own view) count every turn.
 * - Barge-in: the caller speaks while the bot speaks, until the emulator hears the bot's audio stop.
 *
 * Speech-to-speech rows (`realtime:` bots on the OpenAI Realtime and Gemini Live stand-ins, first
 * audio S2S_FIRST_AUDIO_MS after the model's VAD ends the caller's turn): the caller speaks out
 * loud; the end of its speech is the stand-in's VAD ending its turn, the vendor's part is the
 * stand-in's first audio delta, the barge-in starts at the stand-in's VAD hearing the caller start
 * (bench/lib/turns-s2s.ts). The records' view: model's first audio → first frame sent.
 *
 * Both: CPU and memory of the worker process of each call (/proc, sampled every 200 ms from the
 * call's start); the stage breakdown from the calls' records (`turns`, src/core/turn-timing.ts).
 */
import { parseArgs } from 'node:util';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startVoiceStandIns } from '../src/testing/voice-standins.js';
import { startCartesiaStandIn } from '../src/testing/cartesia-standin.js';
import { startElevenLabsStandIn } from '../src/testing/elevenlabs-standin.js';
import { stageDurations, type TurnTiming } from '../src/core/turn-timing.js';
import type { CallerStep, TranscriptLine } from '../src/emulator/types.js';
import type { CallRecord } from '../src/call/call.js';
import { levelList, machine, record, startBenchStack, summarize, warmPool, type BenchStack } from './lib/common.js';
import { s2sCallerScript, s2sTurns, startS2sStandIns, S2S_FIRST_AUDIO_MS, table, type TurnSpans } from './lib/turns-s2s.js';

const { values } = parseArgs({
  options: {
    levels: { type: 'string', default: '1,10' },
    turns: { type: 'string', default: '8' },
    pipelines: { type: 'string', default: 'cascade-cartesia,cascade-elevenlabs,cascade-espeak,s2s-openai,s2s-gemini' },
  },
});
const levels = levelList(values.levels);
const turns = Number(values.turns);

const LLM_FIRST_TOKEN_MS = 200;
const LLM_TOKENS_PER_SEC = 20;
const TTS_FIRST_CHUNK_MS = 100;
/** The first piece said is the first word: the stand-in's first token ("Answer ", its space included) completes it. */
const LLM_FIRST_PIECE_MS = LLM_FIRST_TOKEN_MS;

interface Pipeline {
  /** Its bench bot (bench/bots/). */
  bot: string;
  /** A speech-to-speech pipeline: its vendor (its rows are measured by bench/lib/turns-s2s.ts). */
  s2s?: 'openai' | 'gemini';
  /**
   * The vendors' latency from the caller's end of turn to the first audio of the answer, ms: as
   * configured for the stand-ins; espeak-ng's synthesis, which runs for real, as the turn's record
   * measured it (`turn`; without one: `espeakMs`, the median of the batch). Speech-to-speech: as
   * the stand-in's clocks measured it per turn (this is its configured part).
   */
  vendorMs(turn?: TurnTiming): number;
}

/** espeak-ng's synthesis of a turn's first piece: its record's llmFirstToken → ttsFirstAudio. */
const espeakOf = (t: TurnTiming) => Math.max(0, (t.stages.ttsFirstAudio ?? 0) - (t.stages.llmFirstToken ?? 0));
let espeakMs = 0;
const PIPELINES: Record<string, Pipeline> = {
  'cascade-cartesia': { bot: 'turns-cartesia', vendorMs: () => LLM_FIRST_PIECE_MS + TTS_FIRST_CHUNK_MS },
  'cascade-elevenlabs': { bot: 'turns-elevenlabs', vendorMs: () => LLM_FIRST_PIECE_MS + TTS_FIRST_CHUNK_MS },
  'cascade-espeak': { bot: 'turns-espeak', vendorMs: (t) => LLM_FIRST_PIECE_MS + (t ? espeakOf(t) : espeakMs) },
  's2s-openai': { bot: 'turns-openai-realtime', s2s: 'openai', vendorMs: () => S2S_FIRST_AUDIO_MS },
  's2s-gemini': { bot: 'turns-gemini-live', s2s: 'gemini', vendorMs: () => S2S_FIRST_AUDIO_MS },
};
const chosen = values.pipelines.split(',').filter((p) => {
  if (!PIPELINES[p]) throw new Error(`no pipeline ${p} (${Object.keys(PIPELINES).join(', ')})`);
  return true;
});

const reply = (n: string) => `Answer ${n}: here it is. End of answer ${n}.`;
const llm = await startVoiceStandIns({
  firstTokenMs: LLM_FIRST_TOKEN_MS,
  tokensPerSec: LLM_TOKENS_PER_SEC,
  reply: (msgs) => reply(/question (\d+)/.exec(msgs.at(-1)?.content ?? '')?.[1] ?? '?'),
});
const pace = { firstChunkMs: TTS_FIRST_CHUNK_MS, chunkMs: 100, chunkGapMs: 25 };
const cartesia = await startCartesiaStandIn(pace);
const eleven = await startElevenLabsStandIn(pace);
const s2s = await startS2sStandIns('sk-bench');
const tmp = mkdtempSync(path.join(tmpdir(), 'patchbay-bench-turns-'));
// The workers' Cartesia and OpenAI SDKs speak wss:// only: workers trust both stand-ins' certificates.
const caFile = path.join(tmp, 'ca.pem');
writeFileSync(caFile, [cartesia.caFile, s2s.openai.caFile].map((f) => readFileSync(f, 'utf8')).join('\n'));
process.env.NODE_EXTRA_CA_CERTS = caFile;
const maxLevel = Math.max(...levels);
// A number per pipeline, routed to its bot.
const numberOf = (name: string) => `+1555000${2100 + chosen.indexOf(name)}`;
const routesFile = path.join(tmp, 'routes.json');
writeFileSync(
  routesFile,
  JSON.stringify({
    routes: chosen.map((name) => ({ to: numberOf(name), bot: PIPELINES[name]!.bot })),
    bots: Object.fromEntries(chosen.map((name) => [PIPELINES[name]!.bot, { turns }])),
  }),
);
const stack = await startBenchStack({
  env: {
    ROUTES_FILE: routesFile,
    EMULATOR_NUMBERS: chosen.map(numberOf).join(','),
    OPENAI_API_KEY: 'sk-bench',
    LLM_BASE_URL: llm.baseUrl,
    LLM_TIMEOUT_MS: '20000',
    CARTESIA_API_KEY: cartesia.apiKey,
    CARTESIA_BASE_URL: cartesia.baseUrl,
    ELEVENLABS_API_KEY: eleven.apiKey,
    ELEVENLABS_BASE_URL: eleven.baseUrl,
    OPENAI_REALTIME_BASE_URL: s2s.openai.baseUrl,
    GEMINI_API_KEY: s2s.gemini.apiKey,
    GEMINI_BASE_URL: s2s.gemini.baseUrl,
    DEFAULT_BOT: PIPELINES[chosen[0]!]!.bot,
    // No phrase cache: every answer's first word is synthesized (the bench's answers repeat).
    TTS_CACHE_ENTRIES: '0',
    IDLE_WORKERS: String(maxLevel),
    MAX_CONCURRENT_BOTS: String(maxLevel + 2),
    PRELOAD_BOTS: chosen.map((p) => PIPELINES[p]!.bot).join(','),
  },
});

// --- worker processes: CPU and RSS from /proc -----------------------------------------------------

const TICK_MS = 10; // USER_HZ = 100
function procStat(pid: number): { ppid: number; cpuMs: number; rssMb: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS, rssMb: (Number(f[21]) * 4096) / 2 ** 20 };
  } catch {
    return undefined;
  }
}
/** This process's child processes (its workers), from the kernel's list of the main thread's children. */
const children = (): number[] =>
  readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);

/** Per worker: CPU at the batch's start, last CPU seen, peak RSS. */
function sampleWorkers(): { stop(): Map<number, { cpuMs: number; peakMb: number }> } {
  const seen = new Map<number, { startCpu: number; cpu: number; peak: number }>();
  const tick = () => {
    for (const pid of children()) {
      const s = procStat(pid);
      if (!s || s.ppid !== process.pid) continue;
      const w = seen.get(pid) ?? { startCpu: s.cpuMs, cpu: s.cpuMs, peak: 0 };
      w.cpu = s.cpuMs;
      w.peak = Math.max(w.peak, s.rssMb);
      seen.set(pid, w);
    }
  };
  tick();
  const timer = setInterval(tick, 200);
  return {
    stop() {
      clearInterval(timer);
      return new Map([...seen].map(([pid, w]) => [pid, { cpuMs: w.cpu - w.startCpu, peakMb: w.peak }]));
    },
  };
}

// --- one batch: `n` simultaneous calls of a pipeline -----------------------------------------------

function callerScript(): CallerStep[] {
  const s: CallerStep[] = [{ waitFor: 'say', match: '^ready' }, { wait: 300 }, { say: 'question 0' }];
  for (let t = 0; t < turns - 1; t++) {
    if (t % 2 === 1) s.push({ waitFor: 'say', match: `^${t}: here`, timeoutMs: 20_000 }, { wait: 200 }, { say: `question ${t + 1}` });
    else s.push({ waitFor: 'say', match: `end of answer ${t}\\.`, timeoutMs: 20_000 }, { wait: 2_000 }, { say: `question ${t + 1}` });
  }
  s.push({ waitFor: 'say', match: `end of answer ${turns - 1}\\.`, timeoutMs: 20_000 }, { wait: 500 });
  return s;
}

/** Caller's question → the first words of its answer (not the rest of an answer it interrupted: answers begin with "Answer"). */
function firstAudioMs(lines: TranscriptLine[]): number[] {
  const out: number[] = [];
  lines.forEach((l, i) => {
    if (l.who !== 'caller' || !/^question \d+/.test(l.text) || l.text === 'question 0') return;
    const next = lines.slice(i + 1).find((x) => (x.who === 'bot' && /^Answer\b/.test(x.text)) || x.who === 'caller');
    if (next?.who === 'bot') out.push(next.atMs - l.atMs);
  });
  return out;
}
function bargeMs(lines: TranscriptLine[]): number[] {
  const out: number[] = [];
  lines.forEach((l, i) => {
    const next = lines[i + 1];
    if (l.who === 'caller' && next?.who === 'system' && next.text === 'bot audio interrupted') out.push(next.atMs - l.atMs);
  });
  return out;
}

/** One cascade call's turns: the vendors' part as configured (espeak-ng's: the batch's median). */
function cascadeTurns(p: Pipeline, lines: TranscriptLine[]): TurnSpans {
  const firstAudio = firstAudioMs(lines);
  const vendor = p.vendorMs();
  return { firstAudio, vendor: firstAudio.map(() => vendor), added: firstAudio.map((ms) => ms - vendor), barge: bargeMs(lines) };
}

interface Batch {
  transcripts: TranscriptLine[][];
  turns: TurnTiming[];
  cpuMs: number[];
  peakMb: number[];
}

async function batch(s: BenchStack, name: string, n: number): Promise<Batch> {
  const p = PIPELINES[name]!;
  await warmPool(s.rt, n);
  const sampler = sampleWorkers();
  const ended = s.ended.length;
  const placedAt = Date.now();
  const calls = Array.from({ length: n }, (_, i) =>
    s.emulator.placeCall({
      to: numberOf(name),
      from: `+1555${String(2_000_000 + i)}`,
      script: p.s2s ? s2sCallerScript(turns) : callerScript(),
    }),
  );
  // Each line stamped as it happens, in epoch ms (the stand-ins' clock; the emulator's `atMs` counts from the call's start).
  const lines = calls.map((c) => {
    const out: TranscriptLine[] = [];
    c.on('transcript', (l) => out.push({ ...l, atMs: Date.now() }));
    return out;
  });
  const ends = await Promise.all(calls.map((c) => c.ended));
  await s.endedCount(n - (s.ended.length - ended), 60_000);
  const procs = sampler.stop();
  const records: CallRecord[] = s.ended.slice(ended);
  const out: Batch = { transcripts: lines, turns: [], cpuMs: [], peakMb: [] };
  if (process.env.BENCH_DEBUG)
    console.log(JSON.stringify({ t0: placedAt, transcript: ends[0]?.transcript, turns: records.map((r) => r.turns) }));
  for (const r of records) {
    out.turns.push(...(r.turns ?? []));
    const w = r.workerPid === undefined ? undefined : procs.get(r.workerPid);
    if (w) {
      out.cpuMs.push(w.cpuMs);
      out.peakMb.push(Math.round(w.peakMb * 10) / 10);
    }
  }
  return out;
}

/** A batch's turns: end of the caller's speech → first bot audio, the vendors' part, patchbay's added, barge-in. */
function measure(p: Pipeline, b: Batch): TurnSpans {
  const out: TurnSpans = { firstAudio: [], vendor: [], added: [], barge: [] };
  for (const lines of b.transcripts) {
    const t = p.s2s ? s2sTurns(s2s, p.s2s, lines) : cascadeTurns(p, lines);
    out.firstAudio.push(...t.firstAudio);
    out.vendor.push(...t.vendor);
    out.added.push(...t.added);
    out.barge.push(...t.barge);
  }
  return out;
}

/**
 * The records' view of patchbay's share: cascade, transcript → first frame sent − the vendors'
 * part (every turn); speech-to-speech, the model's first audio → first frame sent.
 */
function addedByRecords(p: Pipeline, ts: TurnTiming[]): number[] {
  if (p.s2s)
    return ts
      .filter((t) => t.stages.modelFirstAudio !== undefined && t.stages.firstFrameSent !== undefined)
      .map((t) => t.stages.firstFrameSent! - t.stages.modelFirstAudio!);
  return ts.filter((t) => t.stages.transcript !== undefined).map((t) => t.totalMs - p.vendorMs(t));
}

/** Each stage's own time over the turns (ms since the stage before it). */
function stages(ts: TurnTiming[]): Record<string, ReturnType<typeof summarize>> {
  const by = new Map<string, number[]>();
  for (const t of ts) for (const [s, ms] of stageDurations(t.stages)) by.set(s, [...(by.get(s) ?? []), ms]);
  return Object.fromEntries([...by].map(([s, v]) => [s, summarize(v)]));
}

// --- the run ----------------------------------------------------------------------------------------

const before = machine();
const rows: Array<Record<string, unknown>> = [];
for (const name of chosen) {
  const p = PIPELINES[name]!;
  // One call first: the vendors' SDKs, sockets and the stand-ins' speech caches are warm for the measured ones.
  await batch(stack, name, 1);
  for (const n of levels) {
    const b = await batch(stack, name, n);
    if (!p.s2s) espeakMs = summarize(b.turns.map(espeakOf)).p50;
    const m = measure(p, b);
    const row = {
      pipeline: name,
      calls: n,
      /** The vendors' part of end of speech → first audio (speech-to-speech: the stand-in's, measured; p50). */
      vendorMs: Math.round(p.s2s ? summarize(m.vendor).p50 : p.vendorMs()),
      firstAudioMs: summarize(m.firstAudio),
      addedMs: summarize(m.added),
      addedByRecordsMs: summarize(addedByRecords(p, b.turns)),
      bargeInToSilentMs: summarize(m.barge),
      stagesMs: stages(b.turns),
      cpuMsPerCall: summarize(b.cpuMs),
      peakRssMbPerCall: summarize(b.peakMb),
      loadAvg1m: machine().loadAvg1m,
    };
    rows.push(row);
    const a = row.addedMs;
    const bi = row.bargeInToSilentMs;
    console.log(
      `${name} × ${n}: first audio p50 ${row.firstAudioMs.p50} ms (vendors ${row.vendorMs}), added p50 ${a.p50} p99 ${a.p99} ms (${a.n} turns; records: p50 ${row.addedByRecordsMs.p50} p99 ${row.addedByRecordsMs.p99}), barge-in p50 ${bi.p50} p99 ${bi.p99} ms (${bi.n}), CPU ${row.cpuMsPerCall.mean} ms/call, RSS ${row.peakRssMbPerCall.mean} MB`,
    );
  }
}
table(rows);
const result = {
  turns,
  standIns: {
    llmFirstTokenMs: LLM_FIRST_TOKEN_MS,
    llmTokensPerSec: LLM_TOKENS_PER_SEC,
    ttsFirstChunkMs: TTS_FIRST_CHUNK_MS,
    espeakFirstPieceMsLast: espeakMs,
    s2sFirstAudioMs: S2S_FIRST_AUDIO_MS,
  },
  rows,
  loadAvgBefore: before.loadAvg1m,
};
console.log(JSON.stringify(result, null, 2));
record('turns', result);
await stack.close();
await Promise.all([llm.close(), cartesia.close(), eleven.close(), s2s.close()]);
