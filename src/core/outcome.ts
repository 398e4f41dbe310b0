/**
 * Every admitted call ends in exactly one outcome. The list is closed: metrics, call records
 * and tests depend on these names.
 */
export const OUTCOMES = [
  /** The bot finished the call (it hung up, or transferred the caller away). */
  'completed',
  /** The caller hung up after being connected. */
  'caller_hangup',
  /** The caller hung up (or Daily dropped them) while still on hold, before we connected them. */
  'caller_hangup_on_hold',
  /** The call waited in the admission queue longer than QUEUE_TIMEOUT_MS. */
  'queue_timeout',
  /** Creating the room or the token failed. */
  'room_failed',
  /** The bot could not join the room. */
  'join_failed',
  /** `dialin-ready` did not arrive within DIALIN_READY_TIMEOUT_MS. */
  'dialin_timeout',
  /** pinlessCallUpdate failed for good (4xx, or retries exhausted by the deadline). */
  'forward_failed',
  /** The bot's code threw. */
  'bot_error',
  /** The bot's module could not be loaded. */
  'bot_load_failed',
  /** The caller did nothing for the bot's `idleTimeoutMs`. */
  'idle_timeout',
  /** The bot was removed from the room by someone else (room deleted, ejected, network lost). */
  'bot_removed',
  /** MAX_CALL_MS reached. */
  'max_duration',
  /** The worker process died (crash, SIGKILL) or stopped answering pings. */
  'worker_crashed',
  /** The worker went over its memory limit and was killed. */
  'worker_memory',
  /** The service shut down (drain timeout) while the call was live. */
  'shutdown',
  /** The Daily platform reported an error on the dial-in leg. */
  'dialin_error',
  /** The shared Chromium holding the call's page crashed or hung (daily client, shared browser layout). */
  'browser_lost',
  /** An outbound call's far end was busy, did not answer or could not be reached (docs/outbound.md). */
  'dialout_failed',
  /** Fleet mode: the replica running the call stopped (SIGKILL, node loss); a survivor recorded it. */
  'replica_lost',
] as const;

export type Outcome = (typeof OUTCOMES)[number];

/**
 * Outcomes only the records store gives, never a live call: a call left open by this replica
 * (killed, crashed) and closed at its next start-up. (A lost replica's calls are closed by the
 * fleet with `replica_lost`, a call outcome.)
 */
export const RECORD_ONLY_OUTCOMES = ['interrupted'] as const;
export type RecordOutcome = Outcome | (typeof RECORD_ONLY_OUTCOMES)[number];
/** Every outcome a record can hold. */
export const RECORD_OUTCOMES: readonly RecordOutcome[] = [...OUTCOMES, ...RECORD_ONLY_OUTCOMES];

export function isRecordOutcome(s: unknown): s is RecordOutcome {
  return typeof s === 'string' && (RECORD_OUTCOMES as readonly string[]).includes(s);
}

/** Outcomes of a call that went as it should (the caller was served): the rest are failures. */
export const GOOD_OUTCOMES: readonly Outcome[] = ['completed', 'caller_hangup'];

export function isOutcome(s: unknown): s is Outcome {
  return typeof s === 'string' && (OUTCOMES as readonly string[]).includes(s);
}

/**
 * Who can claim an outcome for a call (`Call.end(outcome, detail, by)`), and how the claims compete.
 * This is the one precedence table: the FIRST definitive claim decides the call's outcome; every
 * later claim with a different outcome is appended to the call's `detail`, never a second outcome.
 * A request (definitive: false) asks the worker to end the call; the worker's answer (or the
 * supervisor, if it dies) is the definitive claim, and the request stands only if none arrives.
 */
export const END_CLAIMS = {
  /** Room or token creation failed (room_failed): the call never queued. */
  admission: { definitive: true },
  /** The call never started: queue_timeout, or shutdown while it waited. */
  queue: { definitive: true },
  /** The worker's own `done`: it saw the call end (caller hang-up, the bot, its timeouts, errors). */
  worker: { definitive: true },
  /** The worker died or was killed (worker_crashed, worker_memory), or no worker could be had. */
  supervisor: { definitive: true },
  /** Daily's domain webhook said the call is over and the worker had not ended it within the grace. */
  reconcile: { definitive: true },
  /** Drain timeout / shutdown of a live call: a hang-up request to the worker. */
  drain: { definitive: false },
  /** The parent's max-duration backstop: a hang-up request to a worker that outlived every deadline. */
  backstop: { definitive: false },
  /** Fleet mode: a survivor recording a lost replica's call (replica_lost). */
  fleet: { definitive: true },
} as const satisfies Record<string, { definitive: boolean }>;

export type EndClaimer = keyof typeof END_CLAIMS;

export interface OutcomeClaim {
  outcome: Outcome;
  detail?: string | undefined;
  by: EndClaimer;
}

/**
 * Folds claims (in arrival order) into one outcome and its detail, by `END_CLAIMS`. Returns
 * undefined while no claim decides (only requests so far, and `final` is false).
 */
export function settleOutcome(
  claims: readonly OutcomeClaim[],
  final = false,
): { outcome: Outcome; detail: string | undefined; by: EndClaimer } | undefined {
  const winner = claims.find((c) => END_CLAIMS[c.by].definitive) ?? (final ? claims[0] : undefined);
  if (!winner) return undefined;
  const others = claims.filter((c) => c !== winner && c.outcome !== winner.outcome);
  const notes = others.map(
    (c) => `${END_CLAIMS[c.by].definitive ? 'then' : 'requested'} ${c.outcome} by ${c.by}${c.detail ? ` (${c.detail})` : ''}`,
  );
  const detail = [winner.detail, ...notes].filter((s): s is string => !!s).join('; ');
  return { outcome: winner.outcome, detail: detail === '' ? undefined : detail, by: winner.by };
}
