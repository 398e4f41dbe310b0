/**
 * Who a call is: the one identity type shared by the dispatcher's record, the worker's assignment
 * (IPC), the dashboard view, stored records and the SDK's `CallInfo`. It sits below src/dispatch,
 * src/worker, src/sdk and src/server so that each of them can import it without importing the others.
 *
 * Names: `callId` is always **Daily's** call id (from the pinless webhook); patchbay's own id for the
 * call is `id` in records and in the SDK, and `patchbayId` in IPC messages (src/workers/protocol.ts).
 */
export interface CallIdentity {
  /** patchbay's id for the call (a UUID; in logs `id`, in IPC messages `patchbayId`). */
  id: string;
  /** Daily's call id (the webhook's `callId`). */
  callId: string;
  /** Daily's call domain (the webhook's `callDomain`). */
  callDomain: string;
  from: string;
  to: string;
  sipHeaders: Record<string, string>;
  /** The bot the router picked. */
  bot: string;
  /** The room patchbay created for the call (unique per call). */
  roomName: string;
  /** The room's URL; '' until the room exists. */
  roomUrl: string;
}

/** The identity fields a stored record or the dashboard shows (no SIP headers, no room URL). */
export type CallSummaryIdentity = Pick<CallIdentity, 'id' | 'callId' | 'from' | 'to' | 'bot'>;
