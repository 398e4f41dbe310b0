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

export const BOT_EVENT_KINDS = [
  'say',
  'play',
  'digits',
  'transcript',
  'transfer',
  'hangup',
  'dialin_error',
  'dialin_warning',
  /** The call's recording (src/workers/child/call-recording.ts): `started <id>`, `stopped <id>`, `error <why>`, `paused`, `resumed`. */
  'recording',
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
