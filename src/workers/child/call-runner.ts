/**
 * One call, inside a worker: join → wait for `dialin-ready` → pinlessCallUpdate (exactly once) →
 * wait for `dialin-connected` → run the bot → leave. Whatever happens, it resolves with exactly
 * one outcome; it never throws.
 *
 * Each stage is a function of its own; the call client's events are handled in call-events.ts,
 * the bot's part in call-bot.ts, the forward in call-forward.ts, and every way a call can end is
 * mapped to its outcome in one place (`outcomeOf`, call-ending.ts).
 */
import { errorMessage } from '../../core/errors.js';
import { preGrantForward } from './forward-grant.js';
import { awaitBot, runBot, startMaxDuration } from './call-bot.js';
import { step, withTimeout, type CallResult } from './call-ending.js';
import { listenToCall, listenToHangup } from './call-events.js';
import { forwardCall } from './call-forward.js';
import { dialOut } from './call-outbound.js';
import { startRecording, type CallRecording } from './call-recording.js';
import { infoOf, newCallRun, type CallRun, type RunCallDeps } from './call-state.js';

export type { CallResult } from './call-ending.js';
export type { RunCallDeps } from './call-state.js';
export { withDisplayName } from './call-forward.js';

export async function runCall(deps: RunCallDeps): Promise<CallResult> {
  const run = newCallRun(deps);
  // Listeners first: dialin-ready may fire the moment join resolves.
  listenToCall(run);
  const stopHangup = listenToHangup(run);
  let maxTimer: NodeJS.Timeout | undefined;
  let recording: CallRecording | undefined;
  try {
    const dial = run.deps.call.outbound;
    if (dial) {
      // Outbound (POST /calls): join, the bot loaded, then dial instead of forwarding a held caller.
      if (!(await joinRoom(run)) || !(await awaitBot(run)) || !run.loaded) return await run.ending.done;
      const answer = await dialOut(run, dial);
      if (!answer) return await run.ending.done;
      maxTimer = startMaxDuration(run, run.loaded.bot);
      return await runBot(run, run.loaded, answer.voicemail);
    }
    const sipUri = await reachRoom(run);
    if (sipUri === undefined || run.ending.result) return await run.ending.done;
    if (!(await awaitBot(run)) || !run.loaded) return await run.ending.done;
    if (!(await forwardCall(run, sipUri))) return await run.ending.done;
    if (!(await awaitCaller(run))) return await run.ending.done;
    maxTimer = startMaxDuration(run, run.loaded.bot);
    // After the caller is connected: nothing on the call path waits for the recording.
    recording = startRecording(run);
    return await runBot(run, run.loaded);
  } catch (err) {
    // Our own bug; still exactly one outcome.
    run.logger.error({ err }, 'call runner failed');
    run.ending.end({ kind: 'internal', message: errorMessage(err) });
    return await run.ending.done;
  } finally {
    clearTimeout(maxTimer);
    stopHangup();
    await withTimeout(recording?.stop() ?? Promise.resolve(), 4_000).catch(() => undefined);
    await hangUp(run);
  }
}

/** Stages 1–2: join the room and wait for dialin-ready — done before the call on a warm slot. */
async function reachRoom(run: CallRun): Promise<string | undefined> {
  const { warm } = run.deps.call;
  if (!warm) return joinAndWaitReady(run);
  run.stage('joined', { warm: true });
  run.stage('dialin_ready', { sipEndpoint: warm.sipEndpoint, warm: true });
  return warm.sipEndpoint;
}

/** Stage 1: join the room as the bot; false when the call ended instead. */
async function joinRoom(run: CallRun): Promise<boolean> {
  const { call, client, init } = run.deps;
  const { ending } = run;
  const joinStarted = Date.now();
  const joined = await step(
    ending,
    client
      .join({ roomUrl: call.roomUrl, token: call.token, userName: 'patchbay-bot', timeoutMs: init.joinTimeoutMs })
      .catch((err: unknown) => {
        ending.end({ kind: 'join-failed', message: errorMessage(err) });
        return undefined;
      }),
    init.joinTimeoutMs + 1_000,
    { kind: 'join-timeout', timeoutMs: init.joinTimeoutMs },
  );
  if (!joined || ending.result) return false;
  run.stage('joined', { joinMs: Date.now() - joinStarted });
  return true;
}

async function joinAndWaitReady(run: CallRun): Promise<string | undefined> {
  const { init } = run.deps;
  const { ending } = run;
  if (!(await joinRoom(run))) return undefined;
  preGrantForward(run);
  const uri = await step(ending, run.ready.promise, init.dialinReadyTimeoutMs, {
    kind: 'dialin-ready-timeout',
    timeoutMs: init.dialinReadyTimeoutMs,
  });
  if (uri === undefined || ending.result) return undefined;
  run.stage('dialin_ready', { sipEndpoint: uri });
  return uri;
}

/** Stage 4: the caller must actually arrive. */
async function awaitCaller(run: CallRun): Promise<boolean> {
  const { dialinReadyTimeoutMs } = run.deps.init;
  await step(run.ending, run.arrived.promise, dialinReadyTimeoutMs, {
    kind: 'caller-not-connected',
    timeoutMs: dialinReadyTimeoutMs,
  });
  if (run.ending.result) return false;
  run.stage('connected', { callerSessionId: run.callerSessionId });
  return true;
}

/** The end, whatever it was: hang up on a caller still here, the bot's onEnd, leave the room. */
async function hangUp(run: CallRun): Promise<void> {
  const { client, call } = run.deps;
  const { logger, loaded, session, callerSessionId } = run;
  const result = run.ending.result ?? (await run.ending.done);
  const callerStillHere = run.connected && !session?.transferTarget && result.outcome !== 'caller_hangup';
  if (callerStillHere && callerSessionId) {
    await withTimeout(client.ejectParticipant(callerSessionId), 2_000).catch((err: unknown) =>
      logger.warn({ err: errorMessage(err) }, 'could not hang up on the caller'),
    );
  }
  if (loaded?.bot.onEnd) {
    try {
      await withTimeout(Promise.resolve(loaded.bot.onEnd(session ?? infoOf(call), result.outcome)), 5_000);
    } catch (err) {
      logger.warn({ err, botFile: loaded.file }, 'onEnd failed');
    }
  }
  for (const u of run.unsubs) u();
  await withTimeout(client.leave(), 3_000).catch(() => undefined);
}
