/**
 * Conversational turns per pipeline, side by side in one run (issue 23): the end of the caller's
 * speech → the first bot audio, patchbay's own share of it beyond the vendors' configured
 * latencies, barge-in → bot silent, and CPU and memory per call, at 1 and 10 simultaneous calls.
 *
 *   npx tsx bench/turns.ts [--levels 1,10] [--turns 8] [--pipelines cascade-cartesia,cascade-elevenlabs,cascade-espeak]
 *
 * One service (the emulator, real worker processes) runs every pipeline: each is a bench bot
 * (bench/bots/turns-*.ts) choosing its TTS with `tts:`. The LLM is the OpenAI stand-in (first token
 * after LLM_FIRST_TOKEN_MS, then LLM_TOKENS_PER_SEC); Cartesia and ElevenLabs are their stand-ins
 * (first audio of a context TTS_FIRST_CHUNK_MS after its text); espeak-ng runs for real (its
 * synthesis of the first piece, from each turn's record, counts as the vendor's). TTS_CACHE_ENTRIES=0:
 * the answers repeat, and a cached first word would hide the TTS.
 *
 * - The caller is the emulator's text caller: its words reach the bot as Daily's transcript at once,
 *   so the end of its speech is its transcript line; first audio is the bot's first words reaching it.
 * - Added = that span − the vendors' part: the LLM's first token (it completes the first word, the
 *   first piece said) + the TTS's first audio. A call's first turn is left out of this span: its
 *   transcript also waits for the emulator's transcription to start (≈ 0.4 s); the records' turns
 *   (transcript → first frame sent, patchbay's own view) count every turn.
 * - Barge-in: the caller speaks while the bot speaks, until the emulator hears the bot's audio stop.
 * - CPU and memory: of the worker process of each call (/proc, sampled every 200 ms from the call's start).
 * - The stage breakdown comes from the calls' records (`turns`, src/core/turn-timing.ts).
 *
 * A pipeline is a row of PIPELINES: speech-to-speech adds one by name (its bot and its vendor latency).
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
import { levelList, machine, record, startBenchStack, summarize, warmPool, type BenchStack } from './lib/common.js';

const { values } = parseArgs({
  options: {
    levels: { type: 'string', default: '1,10' },
    turns: { type: 'string', default: '8' },
    pipelines: { type: 'string', default: 'cascade-cartesia,cascade-elevenlabs,cascade-espeak' },
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
  /**
   * The vendors' latency from the caller's end of turn to the first audio of the answer, ms: as
   * configured for the stand-ins; espeak-ng's synthesis, which runs for real, as the turn's record
   * measured it (`turn`; without one: `espeakMs`, the median of the batch).
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
  // Speech-to-speech: { bot: 'turns-realtime', vendorMs: () => <the Realtime stand-in's first audio> }.
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
// The worker's Cartesia SDK speaks wss:// only: workers trust the stand-in's certificate.
process.env.NODE_EXTRA_CA_CERTS = cartesia.caFile;
const maxLevel = Math.max(...levels);
// A number per pipeline, routed to its bot.
const numberOf = (name: string) => `+1555000${2100 + chosen.indexOf(name)}`;
const routesFile = path.join(mkdtempSync(path.join(tmpdir(), 'patchbay-bench-turns-')), 'routes.json');
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

interface Batch {
  firstAudio: number[];
  barge: number[];
  turns: TurnTiming[];
  cpuMs: number[];
  peakMb: number[];
}

async function batch(s: BenchStack, to: string, n: number): Promise<Batch> {
  await warmPool(s.rt, n);
  const sampler = sampleWorkers();
  const ended = s.ended.length;
  const placedAt = Date.now();
  const calls = Array.from({ length: n }, (_, i) =>
    s.emulator.placeCall({ to, from: `+1555${String(2_000_000 + i)}`, script: callerScript() }),
  );
  const ends = await Promise.all(calls.map((c) => c.ended));
  await s.endedCount(n - (s.ended.length - ended), 60_000);
  const procs = sampler.stop();
  const records = s.ended.slice(ended);
  const out: Batch = { firstAudio: [], barge: [], turns: [], cpuMs: [], peakMb: [] };
  for (const e of ends) {
    out.firstAudio.push(...firstAudioMs(e.transcript));
    out.barge.push(...bargeMs(e.transcript));
  }
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
  await batch(stack, numberOf(name), 1);
  for (const n of levels) {
    const b = await batch(stack, numberOf(name), n);
    espeakMs = summarize(b.turns.map(espeakOf)).p50;
    const added = b.firstAudio.map((ms) => ms - p.vendorMs());
    const ownAdded = b.turns.filter((t) => t.stages.transcript !== undefined).map((t) => t.totalMs - p.vendorMs(t));
    const row = {
      pipeline: name,
      calls: n,
      vendorMs: Math.round(p.vendorMs()),
      firstAudioMs: summarize(b.firstAudio),
      addedMs: summarize(added),
      /** The same from the records: transcript → first frame sent (every turn) − vendorMs. */
      addedByRecordsMs: summarize(ownAdded),
      bargeInToSilentMs: summarize(b.barge),
      stagesMs: stages(b.turns),
      cpuMsPerCall: summarize(b.cpuMs),
      peakRssMbPerCall: summarize(b.peakMb),
      loadAvg1m: machine().loadAvg1m,
    };
    rows.push(row);
    const a = row.addedMs;
    console.log(
      `${name} × ${n}: first audio p50 ${row.firstAudioMs.p50} ms, added p50 ${a.p50} p99 ${a.p99} ms (${a.n} turns; records: p50 ${row.addedByRecordsMs.p50} p99 ${row.addedByRecordsMs.p99}), barge-in p99 ${row.bargeInToSilentMs.p99} ms, CPU ${row.cpuMsPerCall.mean} ms/call, RSS ${row.peakRssMbPerCall.mean} MB`,
    );
  }
}
const result = {
  turns,
  standIns: {
    llmFirstTokenMs: LLM_FIRST_TOKEN_MS,
    llmTokensPerSec: LLM_TOKENS_PER_SEC,
    ttsFirstChunkMs: TTS_FIRST_CHUNK_MS,
    espeakFirstPieceMsLast: espeakMs,
  },
  rows,
  loadAvgBefore: before.loadAvg1m,
};
console.log(JSON.stringify(result, null, 2));
record('turns', result);
await stack.close();
await Promise.all([llm.close(), cartesia.close(), eleven.close()]);
