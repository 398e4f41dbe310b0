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
  /** The shared browser serving the bot's page crashed, hung or was restarted (CALL_CLIENT=daily). */
  'browser_lost',
] as const;

export type Outcome = (typeof OUTCOMES)[number];

export function isOutcome(s: unknown): s is Outcome {
  return typeof s === 'string' && (OUTCOMES as readonly string[]).includes(s);
}
