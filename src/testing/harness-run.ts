/**
 * One call of the bot test harness (index.ts `createBotHarness().run`): the scripted caller placed
 * through the emulator, the service's record awaited (or the reason it never came), and the result
 * read from the record and the caller's transcript.
 */
import path from 'node:path';
import type { CallRecord } from '../admission/dispatcher.js';
import type { RouteResult } from '../admission/router.js';
import type { CallerStep, EmulatedCall, Emulator, TranscriptLine } from '../emulator/types.js';
import type { Bot } from '../sdk/index.js';
import { botDirOf, botNameOf, resolveBotPath } from './bot-paths.js';
import { BotTestError, type BotTestOptions, type BotTestResult, type CallerAction } from './types.js';

export const DEFAULT_TO = '+15550001000';

/** What a harness shares across its calls. */
export interface HarnessCallContext {
  emulator: Emulator;
  botsDir: string;
  /** Each test call is routed to the bot (and settings) it was placed for. */
  pending: Map<string, RouteResult>;
  ended: Map<string, CallRecord>;
  waiters: Map<string, (r: CallRecord) => void>;
}

export async function runHarnessCall(ctx: HarnessCallContext, bot: Bot | string, o: BotTestOptions): Promise<BotTestResult> {
  const file = resolveBotPath(bot);
  if (path.resolve(botDirOf(file)) !== path.resolve(ctx.botsDir)) {
    throw new TypeError(`bot harness: ${file} is not in this harness's bots directory ${ctx.botsDir}`);
  }
  const name = botNameOf(file);
  const to = o.to ?? DEFAULT_TO;
  ensureNumber(ctx.emulator, to);
  const timeoutMs = o.timeoutMs ?? 30_000;
  const script = callerScript(ctx.emulator, o, timeoutMs);
  const started = Date.now();
  const call: EmulatedCall = ctx.emulator.placeCall({
    to,
    from: o.from ?? '+15555550100',
    ...(o.sipHeaders ? { sipHeaders: o.sipHeaders } : {}),
    script,
  });
  ctx.pending.set(call.callId, { bot: name, ...(o.config ? { config: o.config } : {}) });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      call.hangup();
      reject(new BotTestError(`bot test: the call did not end within ${timeoutMs} ms (bot "${name}")`, call.transcript));
    }, timeoutMs);
  });
  try {
    const record = await serviceRecord(ctx, call, deadline);
    // The service is done with the call. A caller it never connected stays on hold (as with
    // Daily, until the hold timeout): hang up for them. A connected one gets a moment to be ejected.
    if (call.state === 'held') call.hangup();
    const grace = setTimeout(() => call.hangup(), 5_000);
    const callerEnd = await Promise.race([call.ended, deadline]).finally(() => clearTimeout(grace));
    return resultOf(ctx.emulator, record, [...callerEnd.transcript], callerEnd.reason, o, started);
  } finally {
    clearTimeout(timer);
    ctx.waiters.delete(call.callId);
    ctx.pending.delete(call.callId);
    ctx.ended.delete(call.callId);
  }
}

/** The number (or SIP URI) dialled routes to the service, like the configured ones. */
function ensureNumber(emulator: Emulator, to: string): void {
  const entries = emulator.getPinlessDialin();
  const isSip = /^sips?:/i.test(to);
  if (entries.some((e) => (isSip ? e.sip_uri === to : e.phone_number === to))) return;
  const base = entries[0];
  if (!base) return; // nothing routed to the service: the call ends not_in_service, reported by serviceRecord
  const { phone_number: _p, sip_uri: _s, ...rest } = base;
  emulator.setPinlessDialin([...entries, { ...rest, ...(isSip ? { sip_uri: to } : { phone_number: to }) }]);
}

/** The caller's script in the emulator's terms; the agents' far ends set up for dial-out. */
function callerScript(emulator: Emulator, o: BotTestOptions, timeoutMs: number): CallerStep[] {
  const toSteps = (steps: CallerAction[]): CallerStep[] =>
    steps.map((s) => {
      if (!('waitFor' in s)) return s;
      const match = s.match instanceof RegExp ? s.match.source : s.match;
      return { waitFor: s.waitFor, ...(match !== undefined ? { match } : {}), timeoutMs: s.timeoutMs ?? o.waitForTimeoutMs ?? 10_000 };
    });
  const script = toSteps(o.caller);
  for (const [uri, a] of Object.entries(o.agents ?? {})) {
    emulator.setDialOutTarget(uri, {
      answer: a.answer ?? 'answer',
      ...(a.answerAfterMs !== undefined ? { answerAfterMs: a.answerAfterMs } : {}),
      script: toSteps(a.script ?? []),
    });
  }
  // Time on hold (cold worker, busy machine) does not count against the first `waitFor: 'say'`.
  const first = script[0];
  if (first && 'waitFor' in first && first.waitFor === 'say') script.unshift({ waitFor: 'connected', timeoutMs });
  return script;
}

/** The service's record of the call; a call the service never took ends on the caller's side only. */
async function serviceRecord(ctx: HarnessCallContext, call: EmulatedCall, deadline: Promise<never>): Promise<CallRecord> {
  const recordP = new Promise<CallRecord>((resolve) => {
    const have = ctx.ended.get(call.callId);
    if (have) return resolve(have);
    ctx.waiters.set(call.callId, resolve);
  });
  let orphanTimer: NodeJS.Timeout | undefined;
  let serviceDone = false;
  const orphan = call.ended.then(
    (end) =>
      new Promise<never>((_, reject) => {
        if (serviceDone) return;
        orphanTimer = setTimeout(() => {
          const hook = call.webhook ? ` (webhook: ${call.webhook.status ?? call.webhook.error ?? 'no answer'})` : ' (no webhook was sent)';
          reject(new BotTestError(`bot test: the call ended (${end.reason}) but the service never reported it${hook}`, end.transcript));
        }, 5_000);
      }),
  );
  return Promise.race([recordP, deadline, orphan]).finally(() => {
    serviceDone = true;
    clearTimeout(orphanTimer);
  });
}

/** Caller turn → the bot's next line, in ms. */
function turnLatencies(transcript: TranscriptLine[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < transcript.length; i++) {
    const l = transcript[i]!;
    if (l.who !== 'caller' || l.text === '[hangs up]') continue;
    const next = transcript.slice(i + 1).find((x) => x.who === 'bot' || (x.who === 'caller' && x.text !== l.text));
    if (next?.who === 'bot') out.push(next.atMs - l.atMs);
  }
  return out;
}

/** Throws when the caller's script broke or a latency budget was missed. */
function check(
  record: CallRecord,
  transcript: TranscriptLine[],
  o: BotTestOptions,
  firstAudioMs: number | undefined,
  turns: number[],
): void {
  const scriptProblem = transcript.find((l) => l.who === 'system' && l.text.startsWith('script:'));
  if (scriptProblem && !o.allowScriptTimeout) {
    throw new BotTestError(
      `bot test: caller ${scriptProblem.text.replace(/^script:\s*/, '')} (outcome ${record.outcome}${record.detail ? `: ${record.detail}` : ''})`,
      transcript,
    );
  }
  const b = o.budgets;
  if (b?.firstAudioWithinMs !== undefined && (firstAudioMs === undefined || firstAudioMs > b.firstAudioWithinMs)) {
    throw new BotTestError(
      `bot test: first bot audio ${firstAudioMs ?? 'never'} ms after connect (budget ${b.firstAudioWithinMs} ms)`,
      transcript,
    );
  }
  const turnWithinMs = b?.turnWithinMs;
  const slow = turnWithinMs === undefined ? undefined : turns.find((ms) => ms > turnWithinMs);
  if (slow !== undefined) throw new BotTestError(`bot test: a turn took ${slow} ms (budget ${turnWithinMs} ms)`, transcript);
}

function resultOf(
  emulator: Emulator,
  record: CallRecord,
  transcript: TranscriptLine[],
  callerEnd: BotTestResult['callerEnd'],
  o: BotTestOptions,
  started: number,
): BotTestResult {
  const events = record.botEvents;
  const of = (k: string) => events.filter((e) => e.kind === k).map((e) => e.value);
  const connectedAt = transcript.find((l) => l.who === 'system' && l.text.startsWith('connected to room'))?.atMs;
  const firstBot = transcript.find((l) => l.who === 'bot');
  const firstAudioMs = connectedAt !== undefined && firstBot ? firstBot.atMs - connectedAt : undefined;
  const turnLatenciesMs = turnLatencies(transcript);
  check(record, transcript, o, firstAudioMs, turnLatenciesMs);
  const transfers = of('transfer');
  const warm = transfers.find((t) => t.startsWith('warm: '));
  const agents = emulator
    .dialOutCalls(record.roomName)
    .map((c) => ({ to: c.to, transcript: [...c.transcript], state: c.state, end: c.reason }));
  return {
    outcome: record.outcome!,
    detail: record.detail,
    said: of('say'),
    digits: of('digits'),
    heard: of('transcript'),
    played: of('play'),
    steps: of('step'),
    version: record.botVersion,
    transfer: transfers.find((t) => !t.startsWith('warm: ') && !t.startsWith('bridged: ')),
    warmTransfer: warm ? { target: warm.slice('warm: '.length), bridged: transfers.some((t) => t.startsWith('bridged: ')) } : undefined,
    agents,
    interruptions: transcript.filter((l) => l.who === 'system' && l.text === 'bot audio interrupted').length,
    firstAudioMs,
    turnLatenciesMs,
    hangup: of('hangup')[0],
    events: [...events],
    transcript,
    callerEnd,
    record,
    durationMs: Date.now() - started,
  };
}
