/**
 * End of the caller's speech → final transcript in the bot, per speech-to-text provider, side by
 * side in one run (issue 22): Deepgram nova-3, Deepgram Flux, AssemblyAI, OpenAI (local stand-ins
 * with a fixed latency, driven by the official SDKs in real worker processes) and Daily's
 * transcription (the emulator's), at 1 and 10 simultaneous calls.
 *
 *   npx tsx bench/hearing-latency.ts [--calls 1,10] [--turns 20] [--latency 300]
 *                                    [--providers nova,flux,assemblyai,openai,daily]
 *
 * What is patchbay's share, and how it is timed (all Date.now() on one machine, 1 ms resolution):
 *  - leg A, caller → vendor: the emulator stamps each caller frame as it hands it to the bot's socket
 *    (`emulator.watchCaller`); the stand-in stamps the arrival of the last voiced 20 ms frame of each
 *    utterance (the frame its endpointing ends on) and keeps that frame, so the bench finds the same
 *    frame (same samples: the caller's audio carries a little random noise, so no two frames are
 *    alike) on the emulator's side. A = arrival − sent. It covers the worker's call client, the
 *    caller-audio fan-out, resampling, AssemblyAI's 100 ms batching, the SDK and the socket.
 *  - the vendor's share (not patchbay's): from that arrival to the final leaving the stand-in
 *    (its endpointing silence, 400 ms here, plus the fixed latency).
 *  - leg B, vendor → bot: the stand-in stamps the final as it hands it to its socket; the bot
 *    (bench/bots/hearing-*.ts) stamps it in `onTranscript` and says the stamp. B = bot − sent.
 *  - Daily's transcription runs on Daily's side: no audio leaves patchbay, so A is 0 and the vendor's
 *    share is from the caller's last voiced frame leaving the emulator to its transcription-message.
 *  - OpenAI: the audio leaves patchbay only once patchbay's Silero VAD has ended the utterance
 *    (speech-end after 600 ms of silence, vad.ts's default), in one request per utterance. The
 *    stand-in stamps the request's arrival, its body read whole and `transcript.text.done`'s
 *    sending, and keeps the audio around the end of its voice; the bench finds the caller's last
 *    voiced frame in it and counts the audio after it to the file's end (where the VAD cut it).
 *    VAD wait = that audio in whole 20 ms frames (the design's endpointing, the counterpart of the
 *    vendors' 400 ms, not patchbay's overhead); A = body read − that frame's sending − VAD wait
 *    (call client, fan-out, resampling, the VAD's lag, WAV encoding, SDK, HTTP); vendor = body read
 *    → done sent (the fixed latency and the stand-in's deltas); B as above.
 *  - totalMs, every provider: A + VAD wait + vendor + B, the end of the caller's voice to the bot.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SPEECH_RATE, speechPcm } from '../src/emulator/speech.js';
import type { CallerSignal } from '../src/emulator/types.js';
import { createBotHarness, type BotTestResult, type CallerAction } from '../src/testing/index.js';
import {
  startAssemblyAiStandIn,
  startDeepgramStandIn,
  startOpenAiSttStandIn,
  type DeepgramConnection,
  type OpenAiSttRequest,
} from '../src/testing/index.js';
import { BENCH_BOTS, machine, record, rssMb, summarize, warmPool } from './lib/common.js';
import { HEARD } from './lib/hearing-bot.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '1,10' },
    turns: { type: 'string', default: '20' },
    latency: { type: 'string', default: '300' },
    providers: { type: 'string', default: 'nova,flux,assemblyai,openai,daily' },
  },
});
const levels = values.calls.split(',').map(Number);
const turns = Number(values.turns);
const latencyMs = Number(values.latency);
const PHRASE = 'I would like to pay my bill please';
const VOICED_RMS = 500; // the stand-ins' (speech-energy.ts) default
/** The Silero VAD's silence before its speech-end (vad.ts's default `minSilenceMs`, which stt-openai-utterances.ts keeps). */
const VAD_SILENCE_MS = 600;

const pcm = (await speechPcm(PHRASE))!;
const dg = await startDeepgramStandIn({ latencyMs });
const aai = await startAssemblyAiStandIn({ latencyMs });
const oai = await startOpenAiSttStandIn({ latencyMs });
dg.register(PHRASE, pcm, SPEECH_RATE);
aai.register(PHRASE, pcm, SPEECH_RATE);
oai.register(PHRASE, pcm, SPEECH_RATE);
// Workers forked from here on trust the AssemblyAI stand-in's certificate (a name workers keep).
process.env.NODE_EXTRA_CA_CERTS = aai.certPath;
const env = {
  DEEPGRAM_API_KEY: dg.apiKey,
  DEEPGRAM_BASE_URL: dg.baseUrl,
  ASSEMBLYAI_API_KEY: aai.apiKey,
  ASSEMBLYAI_BASE_URL: aai.baseUrl,
  WORKER_INIT_TIMEOUT_MS: '60000',
};
const frameKey = (f: Int16Array) =>
  createHash('sha1')
    .update(Buffer.from(f.buffer, f.byteOffset, f.byteLength))
    .digest('base64');
function rms(f: Int16Array): number {
  let s = 0;
  for (const v of f) s += v * v;
  return Math.sqrt(s / Math.max(1, f.length));
}

/** What the emulator saw leave the callers: voiced frames by content, Daily transcripts per call. */
class CallerSide {
  readonly voiced = new Map<string, { callId: string; sentAtMs: number }>();
  readonly lastVoiced = new Map<string, number>();
  readonly transcripts = new Map<string, Array<{ sentAtMs: number; voiceEndSentAtMs: number }>>();
  on(e: CallerSignal): void {
    if (e.kind === 'frame') {
      if (rms(e.pcm) < VOICED_RMS) return;
      this.voiced.set(frameKey(e.pcm), { callId: e.callId, sentAtMs: e.sentAtMs });
      this.lastVoiced.set(e.callId, e.sentAtMs);
      return;
    }
    const list = this.transcripts.get(e.callId) ?? [];
    list.push({ sentAtMs: e.sentAtMs, voiceEndSentAtMs: this.lastVoiced.get(e.callId) ?? Number.NaN });
    this.transcripts.set(e.callId, list);
  }
}

/** RSS (MB) of this process's worker children (forked workers/child/main), from /proc. */
function workersRssMb(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== process.pid) continue;
      if (!/workers[/\\]child[/\\]main\.(ts|js)/.test(readFileSync(`/proc/${name}/cmdline`, 'utf8'))) continue;
      const mb = rssMb(Number(name));
      if (mb !== undefined) out.push(mb);
    } catch {
      // gone meanwhile
    }
  }
  return out.sort((a, b) => a - b);
}

interface Leg {
  legAMs: number;
  /** openai: the caller's audio its VAD needed after the last voiced frame (its endpointing); 0 for the others. */
  vadWaitMs: number;
  vendorMs: number;
  legBMs: number;
}
/** A final as its stand-in sent it, with the legs up to its sending. */
type Final = Omit<Leg, 'legBMs'> & { text: string; sentAtMs: number };
type Legs = { legs: Leg[]; unmatched: number };

/** The bot's receipts of one call, in order (its lines as the caller heard them). */
function receipts(r: BotTestResult): Array<{ atMs: number; text: string }> {
  return r.transcript.flatMap((l) => {
    const m = l.who === 'bot' ? HEARD.exec(l.text) : null;
    return m ? [{ atMs: Number(m[1]), text: m[2]! }] : [];
  });
}

/** Each call's finals (in the order its stand-in sent them) paired with the bot's receipts: leg B. */
function withReceipts(results: BotTestResult[], byCall: Map<string, Final[]>, unmatchedBefore: number): Legs {
  const legs: Leg[] = [];
  let unmatched = unmatchedBefore;
  for (const r of results) {
    const got = receipts(r);
    const finals = byCall.get(r.record.callId) ?? [];
    if (finals.length !== got.length) unmatched += Math.abs(finals.length - got.length);
    for (let i = 0; i < Math.min(finals.length, got.length); i++) {
      const { text, sentAtMs, ...f } = finals[i]!;
      if (got[i]!.text !== text) throw new Error(`call ${r.record.callId}: final ${i} was "${text}", the bot got "${got[i]!.text}"`);
      legs.push({ ...f, legBMs: got[i]!.atMs - sentAtMs });
    }
  }
  return { legs, unmatched };
}

function push(byCall: Map<string, Final[]>, callId: string, f: Final): void {
  const list = byCall.get(callId) ?? [];
  list.push(f);
  byCall.set(callId, list);
}

function streamingLegs(results: BotTestResult[], conns: DeepgramConnection[], side: CallerSide): Legs {
  const byCall = new Map<string, Final[]>();
  let unmatched = 0;
  for (const c of conns) {
    for (const t of c.timings) {
      const sent = side.voiced.get(frameKey(t.voiceEndFrame));
      if (!sent) {
        unmatched++;
        continue;
      }
      const legAMs = t.voiceEndHeardAtMs - sent.sentAtMs;
      push(byCall, sent.callId, { legAMs, vadWaitMs: 0, vendorMs: t.sentAtMs - t.voiceEndHeardAtMs, text: t.text, sentAtMs: t.sentAtMs });
    }
  }
  return withReceipts(results, byCall, unmatched);
}

/**
 * The caller's last voiced frame in a request's audio (the stand-in keeps the file's audio from
 * 100 ms before the end of its own last voiced 20 ms frame): the emulator's frames are not aligned
 * with the file's start, so every offset in the first 200 ms is tried, latest first; then the
 * audio after it to the file's end (where the VAD's speech-end cut it), in whole 20 ms frames.
 */
function voiceEndIn(tail: Int16Array, rate: number, side: CallerSide): { callId: string; sentAtMs: number; afterMs: number } | undefined {
  const frame = Math.round(rate / 50);
  for (let o = Math.min(tail.length, Math.round(rate / 5)) - frame; o >= 0; o--) {
    const sent = side.voiced.get(frameKey(tail.subarray(o, o + frame)));
    if (sent) return { ...sent, afterMs: Math.ceil((tail.length - o - frame) / frame) * 20 };
  }
  return undefined;
}

/**
 * OpenAI: the audio leaves patchbay once the VAD has ended the utterance. VAD wait: the audio it
 * needed after the caller's last voiced frame (the earliest its last frame could leave the emulator
 * after that one). Leg A: the request's body at the stand-in − that frame's sending − the VAD wait.
 * Vendor: the body's arrival to `transcript.text.done`'s sending.
 */
function openaiLegs(results: BotTestResult[], requests: OpenAiSttRequest[], side: CallerSide): Legs {
  const byCall = new Map<string, Final[]>();
  let unmatched = 0;
  for (const q of requests) {
    if (q.status !== 200 || !q.text) continue; // no words (a blip): no final
    const end = q.voiceEndTail && q.sampleRate ? voiceEndIn(q.voiceEndTail, q.sampleRate, side) : undefined;
    if (!end || q.bodyAtMs === undefined || q.doneSentAtMs === undefined) {
      unmatched++;
      continue;
    }
    push(byCall, end.callId, {
      legAMs: q.bodyAtMs - end.sentAtMs - end.afterMs,
      vadWaitMs: end.afterMs,
      vendorMs: q.doneSentAtMs - q.bodyAtMs,
      text: q.text,
      sentAtMs: q.doneSentAtMs,
    });
  }
  return withReceipts(results, byCall, unmatched);
}

function dailyLegs(results: BotTestResult[], side: CallerSide): Legs {
  const legs: Leg[] = [];
  let unmatched = 0;
  for (const r of results) {
    const got = receipts(r);
    const sent = side.transcripts.get(r.record.callId) ?? [];
    if (sent.length !== got.length) unmatched += Math.abs(sent.length - got.length);
    for (let i = 0; i < Math.min(sent.length, got.length); i++) {
      const s = sent[i]!;
      legs.push({ legAMs: 0, vadWaitMs: 0, vendorMs: s.sentAtMs - s.voiceEndSentAtMs, legBMs: got[i]!.atMs - s.sentAtMs });
    }
  }
  return { legs, unmatched };
}

const streamingFrom =
  (conns: () => DeepgramConnection[]) =>
  (r: BotTestResult[], side: CallerSide, from: number): Legs =>
    streamingLegs(r, conns().slice(from), side);
// OpenAI's key only where it is heard through (a worker with OPENAI_API_KEY would pick it as its LLM too).
const openaiEnv = { OPENAI_API_KEY: oai.apiKey, OPENAI_STT_BASE_URL: oai.baseUrl };
/** Per provider: its STT_PROVIDER, its extra env, how many finals its stand-in has seen, the legs from the `from`th on. */
const PROVIDERS = {
  nova: { stt: 'deepgram', env: {}, count: () => dg.connections.length, legs: streamingFrom(() => dg.connections) },
  flux: { stt: 'deepgram', env: {}, count: () => dg.connections.length, legs: streamingFrom(() => dg.connections) },
  assemblyai: { stt: 'assemblyai', env: {}, count: () => aai.connections.length, legs: streamingFrom(() => aai.connections) },
  openai: {
    stt: 'openai',
    env: openaiEnv,
    count: () => oai.requests.length,
    legs: (r: BotTestResult[], side: CallerSide, from: number) => openaiLegs(r, oai.requests.slice(from), side),
  },
  daily: { stt: 'daily', env: {}, count: () => 0, legs: (r: BotTestResult[], side: CallerSide) => dailyLegs(r, side) },
} as const;
type ProviderKey = keyof typeof PROVIDERS;

function script(n: number): CallerAction[] {
  const steps: CallerAction[] = [{ waitFor: 'say', match: /^ready/, timeoutMs: 60_000 }];
  for (let t = 0; t < n; t++) {
    // `speak`: out loud in real time whatever the bot listens with; the noise (≈ −35 dB) makes every frame unique.
    steps.push({ speak: PHRASE, noise: 0.02 }, { waitFor: 'say', match: /^heard \d+/, timeoutMs: 15_000 }, { wait: 200 });
  }
  steps.push({ hangup: true });
  return steps;
}

async function runLevel(key: ProviderKey, calls: number) {
  const p = PROVIDERS[key];
  const bot = path.join(BENCH_BOTS, `hearing-${key}.ts`);
  const h = await createBotHarness({
    firstBot: bot,
    env: { ...env, ...p.env, STT_PROVIDER: p.stt, IDLE_WORKERS: String(calls), MAX_CONCURRENT_BOTS: String(calls + 2) },
  });
  // Idle workers with the provider's SDK preloaded (STT_PROVIDER), before any call.
  await warmPool(h.runtime, calls);
  await new Promise((r) => setTimeout(r, 2_000));
  const idleRss = workersRssMb();
  const side = new CallerSide();
  const off = h.emulator.watchCaller((e) => side.on(e));
  const runCalls = (n: number) =>
    Promise.all(Array.from({ length: calls }, () => h.run(bot, { caller: script(n), timeoutMs: 60_000 + n * 15_000 })));
  try {
    await runCalls(1); // warm-up: workers, SDKs, sockets; not counted
    const from = p.count();
    const load1 = machine().loadAvg1m;
    const results = await runCalls(turns);
    const { legs, unmatched } = p.legs(results, side, from);
    return {
      provider: key,
      calls,
      finals: legs.length,
      unmatched,
      receiptsPerCall: results.map((r) => receipts(r).length),
      patchbayMs: summarize(legs.map((l) => l.legAMs + l.legBMs)),
      // End of the caller's voice → the bot: patchbay's legs, the VAD's wait (openai) and the vendor's share.
      totalMs: summarize(legs.map((l) => l.legAMs + l.vadWaitMs + l.vendorMs + l.legBMs)),
      legAMs: summarize(legs.map((l) => l.legAMs)),
      legBMs: summarize(legs.map((l) => l.legBMs)),
      vendorMs: summarize(legs.map((l) => l.vendorMs)),
      ...(key === 'openai' ? { vadWaitMs: summarize(legs.map((l) => l.vadWaitMs)) } : {}),
      workerRssMb: { idle: idleRss, afterCalls: workersRssMb() },
      loadAvg1m: [load1, machine().loadAvg1m],
    };
  } finally {
    off();
    await h.close();
  }
}

const keys = values.providers.split(',');
const unknown = keys.filter((k) => !(k in PROVIDERS));
if (unknown.length > 0) throw new Error(`--providers: unknown ${unknown.join(', ')} (known: ${Object.keys(PROVIDERS).join(', ')})`);
const before = machine();
const rows = [];
for (const calls of levels) {
  for (const key of keys as ProviderKey[]) {
    const row = await runLevel(key, calls);
    console.log(JSON.stringify(row));
    rows.push(row);
  }
}
const result = {
  turns,
  standInLatencyMs: latencyMs,
  endpointingSilenceMs: 400,
  openaiVadSilenceMs: VAD_SILENCE_MS,
  phrase: PHRASE,
  loadAvgBefore: before.loadAvg1m,
  rows,
};
record('hearing-latency', result);
await dg.close();
await aai.close();
await oai.close();
