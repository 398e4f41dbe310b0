/**
 * Warm transfer (`call.warmTransfer`): hold message to the caller, the agent dialled into the room,
 * briefed out of the caller's hearing (canReceive), then caller and agent put through; the bot stays
 * in the room, silent, as its owner, until one of them hangs up. Any failure before the bridge
 * apologises to the caller, who stays with the bot.
 */
import type { Logger } from 'pino';
import type { CallClient } from '../daily/call-client.js';
import { CallEndedError, errorMessage } from '../core/errors.js';
import type { TransferTarget, WarmTransferOptions, WarmTransferResult } from './index.js';

/** What the transfer needs of the call session. */
export interface WarmTransferHost {
  client: CallClient;
  /** The caller's session id. */
  caller: string;
  signal: AbortSignal;
  logger: Logger;
  say(text: string | AsyncIterable<string>): Promise<void>;
  /** Runs `fn` as the bot's turn (idle timer paused). */
  turn<T>(fn: () => Promise<T>): Promise<T>;
  /** A `transfer` bot event. */
  report(value: string): void;
  /** Ends the call, outcome `completed`. */
  end(detail: string): void;
  /** Caller and agent are put through to `target` (the caller leaving is then not a hang-up). */
  bridging(target: string): void;
}

export async function runWarmTransfer(h: WarmTransferHost, opts: WarmTransferOptions): Promise<WarmTransferResult> {
  const { caller, client } = h;
  const target = 'sipUri' in opts.to ? opts.to.sipUri : opts.to.phoneNumber;
  h.report(`warm: ${target}`);
  await h.say(opts.holdMessage ?? 'Please hold while I connect you.');
  const apologise = async (detail: string, result: 'no_answer' | 'failed'): Promise<WarmTransferResult> => {
    h.logger.warn({ target, detail }, 'warm transfer did not go through; back to the bot');
    await client.setCanReceive(caller, { base: true }).catch(() => undefined);
    await h.say(opts.apology ?? 'I am sorry, nobody could take your call right now. I am still here to help.');
    return { result, detail };
  };
  return h.turn(async () => {
    const leg = await dialAgent(h, opts.to, opts.answerTimeoutMs ?? 30_000);
    if ('failed' in leg) return apologise(leg.failed, leg.noAnswer ? 'no_answer' : 'failed');
    const agent = leg.sessionId;
    const agentGone = leg.gone;
    let bridged = false;
    h.signal.addEventListener('abort', () => void (!agentGone.settled && client.stopDialOut(agent).catch(() => undefined)), { once: true });
    try {
      // The briefing is for the agent only.
      await client.setCanReceive(caller, { base: false });
      const briefed = h.say(opts.brief).then(() => 'briefed' as const);
      if ((await Promise.race([briefed, agentGone.promise])) !== 'briefed')
        return await apologise('the agent hung up during the briefing', 'failed');
      await client.setCanReceive(caller, { base: true });
      bridged = true;
      // Caller and agent now hear each other; the bot stays in the room, silent, as its owner (the
      // room would end if its owner left) until one of them hangs up.
      h.bridging(target);
      const t0 = Date.now();
      h.report(`bridged: ${target}`);
      await agentGone.promise;
      const bridgedMs = Date.now() - t0;
      // The outcome first: the caller leaving next is the bot's doing, not a hang-up.
      h.end(`warm transfer to ${target}: bridged ${Math.round(bridgedMs / 1000)} s; the agent hung up`);
      await client.ejectParticipant(caller).catch(() => undefined);
      return { result: 'bridged', agentSessionId: agent, bridgedMs, endedBy: 'agent' };
    } catch (err) {
      if (!bridged && !h.signal.aborted) {
        await client.stopDialOut(agent).catch(() => undefined);
        return apologise(`warm transfer failed: ${errorMessage(err)}`, 'failed');
      }
      throw err;
    }
  });
}

/** Dials the agent; resolves once they answered, or with why not. */
async function dialAgent(
  h: WarmTransferHost,
  to: TransferTarget,
  answerTimeoutMs: number,
): Promise<{ sessionId: string; gone: { promise: Promise<'gone'>; settled: boolean } } | { failed: string; noAnswer: boolean }> {
  const client = h.client;
  const offs: Array<() => void> = [];
  let sessionId: string | undefined;
  // Events may arrive before startDialOut resolves: keep them until the session id is known.
  const early: Array<{ kind: 'answered' | 'stopped' | 'error'; sessionId?: string; msg?: string }> = [];
  let onEvent: (e: (typeof early)[number]) => void = (e) => early.push(e);
  offs.push(client.on('dialout-answered', (e) => onEvent({ kind: 'answered', sessionId: e.sessionId })));
  offs.push(client.on('dialout-stopped', (e) => onEvent({ kind: 'stopped', sessionId: e.sessionId })));
  offs.push(
    client.on('dialout-error', (e) => onEvent({ kind: 'error', ...(e.sessionId ? { sessionId: e.sessionId } : {}), msg: e.errorMsg })),
  );
  offs.push(client.on('participant-left', (e) => onEvent({ kind: 'stopped', sessionId: e.participant.sessionId })));
  const gone = { promise: undefined as unknown as Promise<'gone'>, settled: false };
  let goneResolve!: () => void;
  gone.promise = new Promise<'gone'>((r) => (goneResolve = () => r('gone')));
  void gone.promise.then(() => {
    gone.settled = true;
    for (const off of offs) off();
  });
  try {
    sessionId = (await client.startDialOut({ ...to, displayName: 'agent' })).sessionId;
  } catch (err) {
    goneResolve();
    return { failed: `startDialOut failed: ${errorMessage(err)}`, noAnswer: false };
  }
  const id = sessionId;
  const answer = new Promise<{ ok: true } | { failed: string; noAnswer: boolean }>((resolve) => {
    const timer = setTimeout(
      () => resolve({ failed: `the agent did not answer within ${answerTimeoutMs} ms`, noAnswer: true }),
      answerTimeoutMs,
    );
    const onAbort = () => resolve({ failed: 'the call ended', noAnswer: false });
    h.signal.addEventListener('abort', onAbort, { once: true });
    let answered = false;
    onEvent = (e) => {
      if (e.sessionId !== undefined && e.sessionId !== id) return;
      if (e.kind === 'answered' && !answered) {
        answered = true;
        clearTimeout(timer);
        resolve({ ok: true });
      } else if (e.kind === 'error' && !answered) {
        clearTimeout(timer);
        resolve({ failed: `dial-out failed: ${e.msg ?? 'error'}`, noAnswer: /no answer|busy/i.test(e.msg ?? '') });
      } else if (e.kind === 'stopped') {
        clearTimeout(timer);
        if (!answered) resolve({ failed: 'the agent leg ended before answering', noAnswer: true });
        goneResolve();
      }
    };
    for (const e of early.splice(0)) onEvent(e);
  });
  const r = await answer;
  if ('failed' in r) {
    await client.stopDialOut(id).catch(() => undefined);
    goneResolve();
    if (h.signal.aborted) throw new CallEndedError(String(h.signal.reason ?? 'ended'));
    return r;
  }
  return { sessionId: id, gone };
}
