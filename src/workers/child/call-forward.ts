/**
 * Forwarding the held call into the room (pinlessCallUpdate): exactly once, retried on retryable
 * failures until the deadline (the `forward` policy, src/daily/policies.ts).
 */
import { DailyRestClient } from '../../daily/rest.js';
import { withDisplayName } from '../../daily/sip.js';
import { DailyApiError, errorMessage } from '../../core/errors.js';
import type { ForwardResult, WorkerInit } from '../protocol.js';
import type { CallRun } from './call-state.js';
import { forwardRateLimit } from './forward-grant.js';

interface Attempts {
  count: number;
  /** An attempt got no answer (timeout, connection lost): Daily may have carried it out. */
  unanswered: boolean;
}

function restClient(init: WorkerInit, run: CallRun): DailyRestClient {
  return new DailyRestClient({
    apiUrl: init.dailyApiUrl,
    apiKey: init.dailyApiKey,
    timeoutMs: init.pinlessUpdateTimeoutMs,
    pinlessUpdateTimeoutMs: init.pinlessUpdateTimeoutMs,
    pinlessUpdateDeadlineMs: init.pinlessUpdateDeadlineMs,
    // Daily's per-domain windows, through the parent's (the fleet's) limiter; the first attempt
    // uses the grant held since the join (forward-grant.ts).
    rateLimit: forwardRateLimit(run),
  });
}

/** Stage: forward the held call to `sipUri`; false when the call ends instead. */
export async function forwardCall(run: CallRun, sipUri: string): Promise<boolean> {
  const { call, init } = run.deps;
  if (call.warm?.parentForwards) return forwardedByParent(run, sipUri);
  // The URI is built before `forward_sent`: a failure here is a failure before forwarding (retry/apology).
  const updateUri = call.warm ? withDisplayName(sipUri, call.from) : sipUri;
  run.stage('forward_sent', { sipUri });
  const attempts: Attempts = { count: 0, unanswered: false };
  const forwarded = await restClient(init, run)
    .pinlessCallUpdate(
      { callId: call.callId, callDomain: call.callDomain, sipUri: updateUri },
      {
        signal: run.ending.signal,
        onAttempt: (n) => (attempts.count = n),
        onRetry: (err, attempt, delayMs) => {
          if (err instanceof DailyApiError && err.status === undefined) attempts.unanswered = true;
          run.logger.warn({ err: errorMessage(err), attempt, delayMs }, 'pinlessCallUpdate failed; retrying');
        },
      },
    )
    .then(() => true)
    .catch((err: unknown) => onForwardFailed(run, err, attempts));
  if (!forwarded || run.ending.result) return false;
  run.stage('forwarded', { attempts: attempts.count });
  return true;
}

/** pinlessCallUpdate failed for good: true when it most likely went through anyway. */
function onForwardFailed(run: CallRun, err: unknown, attempts: Attempts): boolean {
  if (run.ending.result) return false;
  if (attempts.unanswered && err instanceof DailyApiError && err.status === 409) {
    // The call is no longer on hold after an attempt whose answer never came: that attempt was most
    // likely carried out. Wait for the caller as after a success; if they never come, forward_failed.
    run.logger.warn(
      { attempts: attempts.count },
      'pinlessCallUpdate: the call left hold after an unanswered attempt; taking it as forwarded',
    );
    return true;
  }
  run.ending.end({ kind: 'forward-rejected', err, attempts: attempts.count });
  return false;
}

/**
 * A warm call whose update the parent sends (issue 27): wait for its result. No answer within the
 * update's deadline (the service is gone or stuck): go on as after an unanswered attempt — the
 * caller must arrive (`awaitCaller` bounds it).
 */
async function forwardedByParent(run: CallRun, sipUri: string): Promise<boolean> {
  const { init, parentForward } = run.deps;
  run.stage('forward_sent', { sipUri, by: 'parent' });
  const waitMs = init.pinlessUpdateDeadlineMs + 2_000;
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    parentForward ?? Promise.resolve(undefined),
    new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), waitMs))),
    run.ending.done.then(() => undefined),
  ]).finally(() => clearTimeout(timer));
  if (run.ending.result) return false;
  if (!r) {
    run.logger.warn({ waitMs }, 'no word from the service about the update it sent; waiting for the caller');
    return true;
  }
  if (!r.ok && !onForwardFailed(run, failureOf(r), { count: r.attempts, unanswered: r.unanswered })) return false;
  run.stage('forwarded', { attempts: r.attempts, by: 'parent' });
  return true;
}

function failureOf(r: Extract<ForwardResult, { ok: false }>): DailyApiError {
  return new DailyApiError(r.message, {
    retryable: r.retryable,
    ...(r.status === undefined ? {} : { status: r.status }),
    ...(r.info === undefined ? {} : { info: r.info }),
  });
}

export { withDisplayName };
