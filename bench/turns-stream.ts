/**
 * End of the caller's turn → first bot audio, streaming vs whole-prompt, and barge-in → bot audio
 * stopped, against local stand-ins with fixed latencies (LLM: first token after 200 ms, then 20
 * tokens/s; TTS: first chunk after 100 ms), on the emulator (real worker processes).
 *
 *   npx tsx bench/turns-stream.ts [--calls 10] [--turns 10] [--client emulator|daily]
 *
 * `--client daily`: the production call client (real daily-js in Debian's Chromium) against the
 * call-machine stand-in bridged to the emulator, so the bot's audio goes through the page's play-out.
 *
 * The end of a turn is the caller's final transcript arriving (the emulator's text caller); first
 * audio is the bot's first words reaching the caller; barge-in is the caller speaking while the bot
 * speaks, until the emulator reports the bot's audio interrupted.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createBotHarness } from '../src/testing/index.js';
import { startVoiceStandIns } from '../src/testing/voice-standins.js';
import type { CallerAction } from '../src/testing/index.js';
import type { TranscriptLine } from '../src/emulator/types.js';
import { CallMachineStandIn } from '../src/emulator/call-machine/stand-in.js';
import { BENCH_BOTS, machine, record, summarize } from './lib/common.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '10' },
    turns: { type: 'string', default: '10' },
    client: { type: 'string', default: 'emulator' },
  },
});
const calls = Number(values.calls);
const turns = Number(values.turns);

const reply = (n: string) => `Answer ${n}: thanks for asking, here is what I found for you. That is all, end of answer ${n}.`;
const standIns = await startVoiceStandIns({
  firstTokenMs: 200,
  tokensPerSec: 20,
  firstChunkMs: 100,
  // About the pace of speech (≈ 15 characters a second), so barge-in finds the bot speaking.
  audioMsPerChar: 60,
  reply: (msgs) => reply(/question (\d+)/.exec(msgs.at(-1)?.content ?? '')?.[1] ?? '?'),
});
const standInCallMachine = values.client === 'daily' ? await CallMachineStandIn.start({ bridge: 'emulator' }) : undefined;
const env: Record<string, string> = {
  OPENAI_API_KEY: 'sk-bench',
  LLM_BASE_URL: standIns.baseUrl,
  TTS_PROVIDER: 'openai',
  TTS_BASE_URL: standIns.baseUrl,
  LLM_TIMEOUT_MS: '20000',
  ...(standInCallMachine
    ? {
        CALL_CLIENT: 'daily',
        CHROMIUM_PATH: '/usr/bin/chromium',
        DAILY_BUNDLE_URL: standInCallMachine.bundleUrl,
        WORKER_INIT_TIMEOUT_MS: '20000',
      }
    : {}),
};
const bot = path.join(BENCH_BOTS, 'turns.ts');
const h = await createBotHarness({ firstBot: bot, env });

function turnLatencies(lines: TranscriptLine[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.who !== 'caller' || !/^question \d+/.test(l.text)) continue;
    const next = lines.slice(i + 1).find((x) => x.who === 'bot');
    if (next) out.push(next.atMs - l.atMs);
  }
  return out;
}
function bargeLatencies(lines: TranscriptLine[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.who !== 'caller') continue;
    const next = lines[i + 1];
    if (next?.who === 'system' && next.text === 'bot audio interrupted') out.push(next.atMs - l.atMs);
  }
  return out;
}

async function run(mode: 'stream' | 'whole'): Promise<{ turn: number[]; barge: number[] }> {
  const turn: number[] = [];
  const barge: number[] = [];
  for (let c = 0; c < calls; c++) {
    const caller: CallerAction[] = [{ waitFor: 'say', match: /^ready/ }, { wait: 300 }, { say: 'question 0' }];
    for (let t = 0; t < turns - 1; t++) {
      if (t % 2 === 1) {
        // Barge in: the next question while this answer is playing (the bot stops, then answers it).
        caller.push({ waitFor: 'say', match: `${t}: thanks`, timeoutMs: 10_000 }, { wait: 200 }, { say: `question ${t + 1}` });
      } else {
        // Let the last words play out (≈ 2 s of speech) before the caller speaks again.
        caller.push({ waitFor: 'say', match: `end of answer ${t}\\.`, timeoutMs: 10_000 }, { wait: 2_200 }, { say: `question ${t + 1}` });
      }
    }
    caller.push({ waitFor: 'say', match: `end of answer ${turns - 1}\\.`, timeoutMs: 10_000 }, { wait: 2_200 });
    const r = await h.run(bot, { config: { mode, turns }, caller, timeoutMs: 120_000 });
    turn.push(...turnLatencies(r.transcript));
    barge.push(...bargeLatencies(r.transcript));
  }
  return { turn, barge };
}

const before = machine();
const stream = await run('stream');
const whole = await run('whole');
const result = {
  client: values.client,
  calls,
  turns,
  standIns: { firstTokenMs: 200, tokensPerSec: 20, firstTtsChunkMs: 100 },
  endOfTurnToFirstAudioMs: { stream: summarize(stream.turn), whole: summarize(whole.turn) },
  bargeInToAudioStoppedMs: { stream: summarize(stream.barge), whole: summarize(whole.barge) },
  loadAvgBefore: before.loadAvg1m,
};
console.log(JSON.stringify(result, null, 2));
record('turns', result);
await h.close();
await standIns.close();
await standInCallMachine?.close();
