/** The vocabulary of outbound calls (outbound.ts, its journal and routes), in a module of its own (no type cycle). */
import type { Outcome } from '../core/outcome.js';
import type { CallbackInfo } from '../core/callback.js';

export const OUTBOUND_STATUSES = ['queued', 'dialing', 'answered', 'busy', 'no-answer', 'failed', 'voicemail', 'ended'] as const;
export type OutboundStatus = (typeof OUTBOUND_STATUSES)[number];
export const isOutboundStatus = (s: string): s is OutboundStatus => OUTBOUND_STATUSES.some((x) => x === s);
/** How an outbound call went, once over. */
export type OutboundResult = Exclude<OutboundStatus, 'queued' | 'dialing' | 'ended'>;

export interface OutboundRequest {
  to: { phoneNumber: string } | { sipUri: string };
  bot: string;
  from?: string;
  metadata?: Record<string, unknown>;
  /** Not dialled before this time (epoch ms). */
  notBeforeMs?: number;
  statusUrl?: string;
  /** A callback instead of hold (callbacks.ts): the bot sees it; the callback store, not the journal, keeps it. */
  callback?: CallbackInfo;
  /** The bot's settings from its route (callbacks: routed by the original `To`). */
  botConfig?: Record<string, unknown>;
}

/** What GET /calls/:id shows of an outbound call. */
export interface OutboundView {
  id: string;
  direction: 'outbound';
  status: OutboundStatus;
  /** The last attempt's result (answered, voicemail, busy, no-answer, failed), once known. */
  result: OutboundResult | null;
  outcome: Outcome | null;
  detail: string | null;
  to: string;
  from: string | null;
  bot: string;
  metadata: Record<string, unknown>;
  attempts: number;
  /** patchbay ids of the attempts' calls (their records), oldest first. */
  callIds: string[];
  createdAtMs: number;
  notBeforeMs: number | null;
  nextAttemptAtMs: number | null;
  history: Array<{ status: OutboundStatus; atMs: number; attempt: number }>;
}

/** One outbound call as the journal keeps it (outbound-journal.ts). */
export interface JournalEntry {
  view: OutboundView;
  req: OutboundRequest;
  key?: string;
  dueAtMs: number;
}
