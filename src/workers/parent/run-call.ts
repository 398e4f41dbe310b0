/**
 * A started call on its worker, parent side: take a warm worker from the pool, hand it the call,
 * relay its messages to the call object, backstop a worker that outlives every deadline, claim its
 * result, and make sure the process is gone. The call's outcome is settled by the call object.
 * A failure before forwarding is retried on a fresh worker or sent to the fallback (fallback.ts).
 */
import type { Config } from '../../core/config.js';
import { APOLOGY_BOT } from '../../core/bot-files.js';
import type { CallAssignment, ChildMessage, ForwardResult } from '../protocol.js';
import { withDisplayName } from '../../daily/sip.js';
import type { Call, CallTransition } from '../../call/call.js';
import { budgetLeftMs, decide, FALLBACK_RESERVE_MS, forwardToFallback, scoped, type ForwardFn } from './fallback.js';
import type { WorkerPool } from './pool.js';
import type { WorkerHandle, WorkerResult } from './handle.js';
import { DailyApiError, errorMessage } from '../../core/errors.js';

export interface RunDeps {
  pool: WorkerPool;
  config: Config;
  stop: AbortSignal;
  /** pinlessCallUpdate from the parent (FALLBACK_SIP_URI); without it, the apology bot is the fallback. */
  forward?: ForwardFn | undefined;
  /** A warm slot's worker, already in the call's room (first attempt only). */
  worker?: WorkerHandle | undefined;
}

/**
 * Resolves once the call has its outcome: its worker reported `done` (or was killed, or never came).
 * That is when the call is over and its bot slot free; `reaped` resolves once its worker process(es)
 * are gone too (a worker exits by itself after `done`, or is closed after WORKER_CLOSE_TIMEOUT_MS).
 * Never throws.
 */
export async function runOnWorker(call: Call, a: CallAssignment, deps: RunDeps): Promise<{ reaped: Promise<void> }> {
  const { config, stop } = deps;
  call.advance('starting');
  const reaping: Array<Promise<void>> = [];
  for (let attempt = 1; ; attempt++) {
    // An outbound call has no held caller: no hold budget, no retry, no fallback (outbound.ts retries busy / no-answer).
    const { result: r, reaped } = await attemptOnWorker(call, a, deps, !a.outbound);
    reaping.push(reaped);
    // A retry (or the apology) runs on a fresh worker, which joins the room itself: no warm slot then.
    if (deps.worker || a.warm) {
      const { warm: _used, ...cold } = a;
      a = cold;
      deps = { ...deps, worker: undefined };
    }
    const next = a.outbound ? 'claim' : decide(call, r, attempt, config, stop.aborted);
    if (next === 'retry') {
      call.noteRecovery({ kind: 'retry', after: r.outcome, ...(r.detail ? { detail: r.detail } : {}), atMs: Date.now() });
      continue;
    }
    if (next === 'fallback') {
      const detail = await fallback(call, a, deps, r, reaping);
      call.end(r.outcome, [r.detail, detail].filter(Boolean).join('; '), r.by);
    } else call.end(r.outcome, r.detail, r.by);
    return { reaped: Promise.all(reaping).then(() => undefined) };
  }
}

/** Sends the caller we cannot serve to FALLBACK_SIP_URI, or to the apology bot. Returns the detail. */
async function fallback(
  call: Call,
  a: CallAssignment,
  deps: RunDeps,
  failed: WorkerResult,
  reaping: Array<Promise<void>>,
): Promise<string> {
  const sipUri = deps.config.resilience.fallbackSipUri;
  let sipDetail = '';
  if (sipUri && deps.forward) {
    const scope = scoped(deps.stop, Math.max(2_000, budgetLeftMs(call, deps.config)));
    const r = await forwardToFallback(call, sipUri, deps.forward, scope.signal).finally(scope.dispose);
    call.noteRecovery({ kind: 'fallback_sip', after: failed.outcome, detail: r.detail, atMs: Date.now() });
    // A fallback that failed (its room gone, Daily refusing) still leaves a caller to tell.
    if (r.ok || r.callerGone || deps.stop.aborted) return r.detail;
    sipDetail = `${r.detail}; `;
  }
  call.noteRecovery({ kind: 'apology', after: failed.outcome, atMs: Date.now() });
  const { botConfig: _unused, ...rest } = a;
  const { result: told, reaped } = await attemptOnWorker(call, { ...rest, bot: APOLOGY_BOT }, deps, false);
  reaping.push(reaped);
  return `${sipDetail}apology bot: ${told.outcome}${told.detail ? ` (${told.detail})` : ''}`;
}

/** Aborts when the call's outcome is decided by someone else (its caller left while it waited for a worker). */
function gone(call: Call): AbortSignal {
  const ctl = new AbortController();
  if (call.outcome !== undefined) ctl.abort();
  else call.on('transition', (t: CallTransition) => t.to === 'ending' && ctl.abort());
  return ctl.signal;
}

/** One worker runs the call (or the apology); resolves with its result, and `reaped` once its process is gone. */
async function attemptOnWorker(
  call: Call,
  a: CallAssignment,
  deps: RunDeps,
  bounded: boolean,
): Promise<{ result: WorkerResult; reaped: Promise<void> }> {
  const { pool, config, stop } = deps;
  let worker: WorkerHandle;
  const coldBefore = pool.coldStarts;
  try {
    if (deps.worker?.state === 'idle') worker = deps.worker;
    else {
      if (a.warm) {
        // The warm slot's worker died between take and start: a pool worker joins the same room.
        call.log.warn({ pid: deps.worker?.pid }, 'warm slot worker gone before the call started; joining the room on another worker');
        const { warm: _gone, ...cold } = a;
        a = cold;
      }
      // A retry waits for a worker no longer than the hold budget allows; no call waits once it has ended.
      const scope = scoped(stop, call.record.recovery ? Math.max(1_000, budgetLeftMs(call, config)) : undefined, gone(call));
      worker = await pool.acquire(scope.signal, { forCall: true }).finally(scope.dispose);
    }
  } catch (err) {
    if (call.outcome !== undefined) return { result: { outcome: call.outcome, by: 'supervisor' }, reaped: Promise.resolve() };
    return {
      result: { outcome: stop.aborted ? 'shutdown' : 'worker_crashed', detail: `no worker: ${errorMessage(err)}`, by: 'supervisor' },
      reaped: Promise.resolve(),
    };
  }
  if (call.outcome !== undefined) {
    // Decided while the worker was on its way (the caller left): it is not needed.
    void worker.close('caller_hangup_on_hold');
    return { result: { outcome: call.outcome, by: 'supervisor' }, reaped: worker.exited };
  }
  worker.on('message', (m: ChildMessage) => relayWorkerMessage(call, m));
  call.workerAssigned({ pid: worker.pid, warmStart: pool.coldStarts === coldBefore, hangup: (outcome) => void worker.close(outcome) });

  const timers = startAttemptTimers(call, worker, config, bounded);

  // A warm slot's worker is already in the room: the parent sends the update as it hands the call
  // over (issue 27), instead of waiting for the worker to wake up and send it — when that worker
  // has the call's bot loaded (no caller is connected to a bot that fails to load: it forwards then).
  const parentForwards = a.warm !== undefined && worker === deps.worker && deps.forward !== undefined && a.bot in worker.bots;
  worker.start(parentForwards && a.warm ? { ...a, warm: { ...a.warm, parentForwards: true } } : a);
  const forwarding = parentForwards && a.warm ? forwardWarm(call, a.warm.sipEndpoint, worker, deps.forward!, stop) : undefined;
  const ended = await worker.result;
  timers.clear();
  const result = withForwardResult(call, ended, await forwarding);
  // Reap: the worker exits by itself after `done`; make sure it does.
  const reaped = Promise.race([
    worker.exited.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), config.workers.closeTimeoutMs)),
  ]).then((gone) => (gone ? undefined : worker.close(result.outcome)));
  return { result, reaped };
}

/** The backstop (MAX_CALL_MS and every deadline) and, when `bounded`, the hold budget of one attempt. */
function startAttemptTimers(call: Call, worker: WorkerHandle, config: Config, bounded: boolean): { clear(): void } {
  // Backstop: the worker enforces MAX_CALL_MS itself; this catches a worker that does not.
  const c = config.call;
  const backstopMs = c.maxCallMs + c.joinTimeoutMs + c.dialinReadyTimeoutMs * 2 + c.pinlessUpdateDeadlineMs + 10_000;
  const backstop = setTimeout(() => {
    call.log.error({ backstopMs }, 'call outlived every deadline; closing its worker');
    call.end('max_duration', `outlived every deadline (${backstopMs} ms)`, 'backstop');
  }, backstopMs);
  backstop.unref();
  // The hold budget: an attempt that has not forwarded the caller in time is ended (the fallback needs the rest).
  const holdTimer = bounded
    ? setTimeout(
        () => {
          // An update in flight is left to the worker's own deadline (it may have been accepted).
          if (call.record.timeline.forward_sent !== undefined || call.endRequested) return;
          call.log.warn(
            { holdBudgetMs: config.resilience.holdBudgetMs },
            'caller not forwarded within the hold budget; ending this attempt',
          );
          worker.kill('SIGKILL', {
            outcome: 'dialin_timeout',
            detail: `not forwarded within the hold budget (${config.resilience.holdBudgetMs} ms)`,
            by: 'supervisor',
          });
        },
        Math.max(0, budgetLeftMs(call, config) - FALLBACK_RESERVE_MS),
      )
    : undefined;
  holdTimer?.unref();
  return {
    clear() {
      clearTimeout(backstop);
      clearTimeout(holdTimer);
    },
  };
}

/**
 * A warm update the service sent that failed for good (answered) while the worker ended otherwise
 * (it died meanwhile): the caller is still on hold — a failure before forwarding (retry or
 * fallback), never a claim.
 */
function withForwardResult(call: Call, result: WorkerResult, fwd: ForwardResult | undefined): WorkerResult {
  if (!fwd || fwd.ok || fwd.unanswered || result.outcome === 'forward_failed' || call.record.timeline.forwarded !== undefined)
    return result;
  return { outcome: 'forward_failed', detail: `pinlessCallUpdate failed: ${fwd.message}`, by: 'supervisor' };
}

/**
 * The worker's stage and bot messages, translated into the call object's own vocabulary (the call
 * knows no IPC). A message naming another call is logged and dropped.
 */
export function relayWorkerMessage(call: Call, m: ChildMessage): void {
  if (m.type !== 'done' && m.type !== 'stage' && m.type !== 'bot' && m.type !== 'bot-version' && m.type !== 'turn') return;
  if (m.patchbayId !== call.id) {
    call.log.error({ type: m.type, patchbayId: m.patchbayId }, 'worker message about another call; ignored');
    return;
  }
  if (m.type === 'done') call.noteWorkerReported();
  else if (m.type === 'stage') call.stamp(m.stage, m.atMs);
  else if (m.type === 'turn') call.turnTimed(m.turn);
  // The apology bot (a fallback) is not the call's bot: the record keeps the routed bot's version.
  else if (m.type === 'bot-version') {
    if (m.bot === call.record.bot) call.botVersioned(m.version);
  } else call.botEvent(m.kind, m.value, m.atMs);
}

/**
 * A warm call's pinlessCallUpdate, sent by the parent (`CallAssignment.warm.parentForwards`): one
 * update, its retries under the `forward` policy (the parent's alone); its result goes to the worker.
 * Stops retrying once the worker is gone (an attempt already sent may still have been carried out).
 */
async function forwardWarm(
  call: Call,
  sipEndpoint: string,
  worker: WorkerHandle,
  forward: ForwardFn,
  stop: AbortSignal,
): Promise<ForwardResult> {
  const { callId, callDomain, from } = call.record;
  let attempts = 0;
  let unanswered = false;
  const ctl = new AbortController();
  const abort = () => ctl.abort();
  stop.addEventListener('abort', abort, { once: true });
  void worker.exited.then(abort);
  let result: ForwardResult;
  try {
    // Built before `forward_sent`: a bad caller id fails here, before forwarding (retry/apology).
    const sipUri = withDisplayName(sipEndpoint, from);
    call.stamp('forward_sent', Date.now());
    await forward({ callId, callDomain, sipUri }, ctl.signal, {
      onAttempt: (n) => (attempts = n),
      onRetry: (err, attempt, delayMs) => {
        if (err instanceof DailyApiError && err.status === undefined) unanswered = true;
        call.log.warn({ err: errorMessage(err), attempt, delayMs }, 'pinlessCallUpdate (warm, from the service) failed; retrying');
      },
    });
    call.stamp('forwarded', Date.now());
    result = { ok: true, attempts };
  } catch (err) {
    const d = err instanceof DailyApiError ? err : undefined;
    if (d && d.status === undefined) unanswered = true;
    result = {
      ok: false,
      attempts,
      unanswered: unanswered || ctl.signal.aborted,
      message: errorMessage(err),
      retryable: d?.retryable ?? true,
      ...(d?.status === undefined ? {} : { status: d.status }),
      ...(d?.info === undefined ? {} : { info: d.info }),
    };
  } finally {
    stop.removeEventListener('abort', abort);
  }
  worker.send({ type: 'forward-result', patchbayId: call.id, result });
  return result;
}
