/**
 * End of the caller's speech → final transcript in the bot, per speech-to-text provider, side by
 * side in one run (issue 22): Deepgram nova-3, Deepgram Flux, AssemblyAI (local stand-ins with a
 * fixed latency, driven by the official SDKs in real worker processes) and Daily's transcription
 * (the emulator's), at 1 and 10 simultaneous calls.
 *
 *   npx tsx bench/hearing-latency.ts [--calls 1,10] [--turns 20] [--latency 300]
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
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SPEECH_RATE, speechPcm } from '../src/emulator/speech.js';
import type { CallerSignal } from '../src/emulator/types.js';
import { createBotHarness, type BotTestResult, type CallerAction } from '../src/testing/index.js';
import { startAssemblyAiStandIn, startDeepgramStandIn, type DeepgramConnection } from '../src/testing/index.js';
import { BENCH_BOTS, machine, record, rssMb, summarize, warmPool } from './lib/common.js';
import { HEARD } from './lib/hearing-bot.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '1,10' },
    turns: { type: 'string', default: '20' },
    latency: { type: 'string', default: '300' },
    providers: { type: 'string', default: 'nova,flux,assemblyai,daily' },
  },
});
const levels = values.calls.split(',').map(Number);
const turns = Number(values.turns);
const latencyMs = Number(values.latency);
const PHRASE = 'I would like to pay my bill please';
const VOICED_RMS = 500; // the stand-ins' (speech-energy.ts) default

const pcm = (await speechPcm(PHRASE))!;
const dg = await startDeepgramStandIn({ latencyMs });
const aai = await startAssemblyAiStandIn({ latencyMs });
dg.register(PHRASE, pcm, SPEECH_RATE);
aai.register(PHRASE, pcm, SPEECH_RATE);
// Workers forked from here on trust the AssemblyAI stand-in's certificate (a name workers keep).
process.env.NODE_EXTRA_CA_CERTS = aai.certPath;
const env = {
  DEEPGRAM_API_KEY: dg.apiKey,
  DEEPGRAM_BASE_URL: dg.baseUrl,
  ASSEMBLYAI_API_KEY: aai.apiKey,
  ASSEMBLYAI_BASE_URL: aai.baseUrl,
  WORKER_INIT_TIMEOUT_MS: '60000',
};
const PROVIDERS = {
  nova: { stt: 'deepgram', connections: dg.connections },
  flux: { stt: 'deepgram', connections: dg.connections },
  assemblyai: { stt: 'assemblyai', connections: aai.connections },
  daily: { stt: 'daily', connections: undefined },
} as const;
type ProviderKey = keyof typeof PROVIDERS;

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
  vendorMs: number;
  legBMs: number;
}

/** The bot's receipts of one call, in order (its lines as the caller heard them). */
function receipts(r: BotTestResult): Array<{ atMs: number; text: string }> {
  return r.transcript.flatMap((l) => {
    const m = l.who === 'bot' ? HEARD.exec(l.text) : null;
    return m ? [{ atMs: Number(m[1]), text: m[2]! }] : [];
  });
}

function streamingLegs(results: BotTestResult[], conns: DeepgramConnection[], side: CallerSide): { legs: Leg[]; unmatched: number } {
  const byCall = new Map<string, Array<{ heardAtMs: number; sentAtMs: number; voiceSentAtMs: number; text: string }>>();
  let unmatched = 0;
  for (const c of conns) {
    for (const t of c.timings) {
      const sent = side.voiced.get(frameKey(t.voiceEndFrame));
      if (!sent) {
        unmatched++;
        continue;
      }
      const list = byCall.get(sent.callId) ?? [];
      list.push({ heardAtMs: t.voiceEndHeardAtMs, sentAtMs: t.sentAtMs, voiceSentAtMs: sent.sentAtMs, text: t.text });
      byCall.set(sent.callId, list);
    }
  }
  const legs: Leg[] = [];
  for (const r of results) {
    const got = receipts(r);
    const finals = byCall.get(r.record.callId) ?? [];
    if (finals.length !== got.length) unmatched += Math.abs(finals.length - got.length);
    for (let i = 0; i < Math.min(finals.length, got.length); i++) {
      const f = finals[i]!;
      if (got[i]!.text !== f.text) throw new Error(`call ${r.record.callId}: final ${i} was "${f.text}", the bot got "${got[i]!.text}"`);
      legs.push({ legAMs: f.heardAtMs - f.voiceSentAtMs, vendorMs: f.sentAtMs - f.heardAtMs, legBMs: got[i]!.atMs - f.sentAtMs });
    }
  }
  return { legs, unmatched };
}

function dailyLegs(results: BotTestResult[], side: CallerSide): { legs: Leg[]; unmatched: number } {
  const legs: Leg[] = [];
  let unmatched = 0;
  for (const r of results) {
    const got = receipts(r);
    const sent = side.transcripts.get(r.record.callId) ?? [];
    if (sent.length !== got.length) unmatched += Math.abs(sent.length - got.length);
    for (let i = 0; i < Math.min(sent.length, got.length); i++) {
      const s = sent[i]!;
      legs.push({ legAMs: 0, vendorMs: s.sentAtMs - s.voiceEndSentAtMs, legBMs: got[i]!.atMs - s.sentAtMs });
    }
  }
  return { legs, unmatched };
}

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
    env: { ...env, STT_PROVIDER: p.stt, IDLE_WORKERS: String(calls), MAX_CONCURRENT_BOTS: String(calls + 2) },
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
    const from = p.connections?.length ?? 0;
    const load1 = machine().loadAvg1m;
    const results = await runCalls(turns);
    const { legs, unmatched } = p.connections ? streamingLegs(results, p.connections.slice(from), side) : dailyLegs(results, side);
    return {
      provider: key,
      calls,
      finals: legs.length,
      unmatched,
      receiptsPerCall: results.map((r) => receipts(r).length),
      patchbayMs: summarize(legs.map((l) => l.legAMs + l.legBMs)),
      legAMs: summarize(legs.map((l) => l.legAMs)),
      legBMs: summarize(legs.map((l) => l.legBMs)),
      vendorMs: summarize(legs.map((l) => l.vendorMs)),
      workerRssMb: { idle: idleRss, afterCalls: workersRssMb() },
      loadAvg1m: [load1, machine().loadAvg1m],
    };
  } finally {
    off();
    await h.close();
  }
}

const before = machine();
const rows = [];
for (const calls of levels) {
  for (const key of values.providers.split(',') as ProviderKey[]) {
    const row = await runLevel(key, calls);
    console.log(JSON.stringify(row));
    rows.push(row);
  }
}
const result = { turns, standInLatencyMs: latencyMs, endpointingSilenceMs: 400, phrase: PHRASE, loadAvgBefore: before.loadAvg1m, rows };
record('hearing-latency', result);
await dg.close();
await aai.close();
