/**
 * A started call on its worker, parent side: take a warm worker from the pool, hand it the call,
 * relay its messages to the call object, backstop a worker that outlives every deadline, claim its
 * result, and make sure the process is gone. The call's outcome is settled by the call object.
 */
import type { Config } from '../config.js';
import type { CallAssignment, ChildMessage } from '../ipc/protocol.js';
import type { Call } from './call.js';
import type { WorkerPool } from './pool.js';
import type { WorkerHandle } from './worker-handle.js';

/** Resolves once the call has an outcome and its worker (if it got one) is reaped. Never throws. */
export async function runOnWorker(
  call: Call,
  assignment: CallAssignment,
  deps: { pool: WorkerPool; config: Config; stop: AbortSignal; /** A warm slot's worker, already in the call's room. */ worker?: WorkerHandle },
): Promise<void> {
  const { pool, config, stop } = deps;
  call.advance('starting');
  let worker: WorkerHandle;
  let a = assignment;
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
      worker = await pool.acquire(stop);
    }
  } catch (err) {
    call.end(stop.aborted ? 'shutdown' : 'worker_crashed', `no worker: ${(err as Error).message}`, 'supervisor');
    return;
  }
  worker.on('message', (m: ChildMessage) => call.onWorkerMessage(m));
  call.workerAssigned({ pid: worker.pid, warmStart: pool.coldStarts === coldBefore, hangup: (outcome) => void worker.close(outcome) });

  // Backstop: the worker enforces MAX_CALL_MS itself; this catches a worker that does not.
  const c = config.call;
  const backstopMs = c.maxCallMs + c.joinTimeoutMs + c.dialinReadyTimeoutMs * 2 + c.pinlessUpdateDeadlineMs + 10_000;
  const backstop = setTimeout(() => {
    call.log.error({ backstopMs }, 'call outlived every deadline; closing its worker');
    call.end('max_duration', `outlived every deadline (${backstopMs} ms)`, 'backstop');
  }, backstopMs);
  backstop.unref();

  worker.start(a);
  const result = await worker.result;
  clearTimeout(backstop);
  call.end(result.outcome, result.detail, result.by);
  // Reap: the worker exits by itself after `done`; make sure it does.
  const reaped = await Promise.race([worker.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), config.workers.closeTimeoutMs))]);
  if (!reaped) await worker.close(result.outcome);
}
