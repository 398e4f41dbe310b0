/**
 * The stages of a call's timeline (epoch ms each). The worker reports `WorkerStage`s over IPC; the
 * parent stamps the others. Metrics, records, the dashboard and the call's trace read the same names.
 */
export const WORKER_STAGES = [
  'joined',
  'dialin_ready',
  'forward_sent',
  'forwarded',
  'connected',
  'bot_started',
  'first_audio',
  'caller_left',
] as const;
export type WorkerStage = (typeof WORKER_STAGES)[number];

/** Parent-side stages, in the order a call normally passes them, with the worker's in between. */
export const TIMELINE_STAGES = ['received', 'room_created', 'queued', 'worker_assigned', ...WORKER_STAGES, 'ended'] as const;
export type TimelineStage = (typeof TIMELINE_STAGES)[number];

export type Timeline = Partial<Record<TimelineStage, number>>;

/** `turn`: turn-taking while the bot speaks (paused, resumed, interrupted, back-channel; src/sdk/turns.ts). */
export const BOT_EVENT_KINDS = [
  'say',
  'play',
  'digits',
  'transcript',
  'transfer',
  'hangup',
  'step',
  'dialin_error',
  'dialin_warning',
  'dialout',
  'voicemail',
  'turn',
  /** The call's recording (src/workers/child/call-recording.ts): `started <id>`, `stopped <id>`, `error <why>`, `paused`, `resumed`. */
  'recording',
  /** The callback offer bot (src/workers/child/callback-offer-bot.ts): the number the caller asked to be called back on. */
  'callback',
] as const;
export type BotEventKind = (typeof BOT_EVENT_KINDS)[number];

/** What the bot did (from the worker's `bot` messages), for the test harness, the dashboard and records. */
export interface BotEvent {
  kind: string;
  value: string;
  atMs: number;
}

/** How a call reached its bot: a warm slot (room and bot ready before the call) or a room of its own. */
export type CallPath = 'warm' | 'cold';

/**
 * A step name (`call.step(name)`): where a call is in its bot, for funnels and the
 * `patchbay_bot_step_total` metric. A fixed vocabulary of the bot ("main-menu", "pin"), never caller data.
 */
export const STEP_NAME = /^[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,63}$/;

export function isStepName(s: unknown): s is string {
  return typeof s === 'string' && STEP_NAME.test(s);
}
