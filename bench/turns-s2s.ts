/**
 * Speech-to-speech turns (issue 23): end of the caller's speech → first bot audio, and barge-in →
 * bot silent, for bots/realtime-assistant.ts against the OpenAI Realtime stand-in (first audio 200 ms
 * after the model's VAD ends the caller's turn, 100 ms chunks every 40 ms), on the emulator with
 * real worker processes, at 1 and 10 simultaneous calls. To be folded into bench/turns.ts.
 *
 *   npx tsx bench/turns-s2s.ts [--turns 6] [--levels 1,10]
 *
 * Clocks: the stand-in stamps when it sent `speech_stopped` (end of the caller's speech), its first
 * audio delta and `speech_started` (barge-in); the worker reports its turn stages (`s2s
 * firstFrameSent <ms>`: the first frame handed to the call client) and the moment it cut the
 * playing (`[interrupted at …]`). Same machine, same clock. patchbay's added ms = first frame sent −
 * the stand-in's first audio delta sent (WebSocket receive, decoding, the play-out queue).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createBotHarness, type BotTestResult, type CallerAction } from '../src/testing/index.js';
import { startOpenAiRealtimeStandIn, type RealtimeConnection } from '../src/testing/openai-realtime-standin.js';
import { levelList, machine, record, REPO, summarize } from './lib/common.js';

const { values } = parseArgs({ options: { turns: { type: 'string', default: '6' }, levels: { type: 'string', default: '1,10' } } });
const turns = Number(values.turns);
const FIRST_AUDIO_MS = 200;

const s = await startOpenAiRealtimeStandIn({
  firstAudioMs: FIRST_AUDIO_MS,
  chunkMs: 100,
  chunkGapMs: 40,
  respond: (t) =>
    t.trigger === 'create' ? { say: 'Ready.' } : { say: 'Here is the answer to that, thanks for asking, and have a nice day.' },
});
process.env.NODE_EXTRA_CA_CERTS = s.caFile;
const bot = path.join(REPO, 'bots/realtime-assistant.ts');
const h = await createBotHarness({
  firstBot: bot,
  env: {
    OPENAI_API_KEY: s.apiKey,
    OPENAI_REALTIME_BASE_URL: s.baseUrl,
    MAX_CONCURRENT_BOTS: '12',
    IDLE_WORKERS: '10',
    WORKER_INIT_TIMEOUT_MS: '60000',
    HOLD_BUDGET_MS: '120000',
  },
});

/** Alternating turns: one answered in full, the next spoken over while the answer plays. */
function script(): CallerAction[] {
  const caller: CallerAction[] = [{ waitFor: 'say', match: /Ready/, timeoutMs: 60_000 }, { wait: 500 }];
  for (let t = 0; t < turns; t++) caller.push({ speak: 'What are your opening hours today?' }, { wait: t % 2 === 0 ? 4_500 : 1_100 });
  caller.push({ wait: 1_000 }, { hangup: true });
  return caller;
}

const atOf = (r: BotTestResult, prefix: string) =>
  r.events.filter((e) => e.kind === 'turn' && e.value.startsWith(prefix)).map((e) => Number(e.value.split(' ')[2]));
const latestBefore = (xs: number[], t: number) => xs.filter((x) => x <= t).reduce((a, b) => Math.max(a, b), -Infinity);

function measure(r: BotTestResult, conn: RealtimeConnection): { total: number[]; added: number[]; barge: number[] } {
  const firstAudio = conn.responses.map((x) => x.firstAudioAt).filter((x): x is number => x !== undefined);
  const triggered = conn.responses.map((x) => x.triggeredAt);
  const total: number[] = [];
  const added: number[] = [];
  for (const sent of atOf(r, 's2s firstFrameSent')) {
    total.push(sent - latestBefore(triggered, sent));
    added.push(sent - latestBefore(firstAudio, sent));
  }
  const cuts = r.events.filter((e) => e.kind === 'say' && e.value.includes('[interrupted at')).map((e) => e.atMs);
  const barge = cuts.map((cut) => cut - latestBefore(conn.speechStartedAt, cut));
  return { total, added, barge };
}

const before = machine();
const results: Record<string, unknown> = {};
for (const n of levelList(values.levels)) {
  const first = s.connections.length;
  const runs = await Promise.all(Array.from({ length: n }, () => h.run(bot, { caller: script(), timeoutMs: 180_000 })));
  // Each call's connection: the session id its worker reported.
  const conns = s.connections.slice(first);
  const all = { total: [] as number[], added: [] as number[], barge: [] as number[] };
  for (const r of runs) {
    const line = r.events.find((e) => e.kind === 'turn' && e.value.startsWith('speech-to-speech: openai connected'))?.value ?? '';
    const conn = conns.find((c) => line.includes(`(${String(c.session.id)})`));
    if (!conn) throw new Error(`no stand-in connection for ${line}`);
    const m = measure(r, conn);
    all.total.push(...m.total);
    all.added.push(...m.added);
    all.barge.push(...m.barge);
  }
  results[`calls_${n}`] = {
    speechEndToFirstFrameMs: summarize(all.total),
    patchbayAddedMs: summarize(all.added),
    bargeInToSilentMs: summarize(all.barge),
  };
  console.log(n, JSON.stringify(results[`calls_${n}`]));
}
const result = {
  turns,
  standIn: { firstAudioMs: FIRST_AUDIO_MS, chunkMs: 100, chunkGapMs: 40 },
  ...results,
  loadAvgBefore: before.loadAvg1m,
  loadAvgAfter: machine().loadAvg1m,
};
console.log(JSON.stringify(result, null, 2));
record('turns-s2s', result);
await h.close();
await s.close();
delete process.env.NODE_EXTRA_CA_CERTS;
