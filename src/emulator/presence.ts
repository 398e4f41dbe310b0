/**
 * A room's participants, and who was in the room when: `GET /rooms/:name/presence` answers from
 * the history, as of `presenceLagMs` ago (Daily's presence data trails the room by up to 15 s, so a
 * participant who just left is still listed, and one who just joined is not yet).
 *
 * The map is the room's one participant list (bots, dial-in and dial-out legs alike), so every
 * join and leave lands in the history without each path having to remember it.
 */
import type { Participant, ParticipantList, PresenceEntry } from './model.js';

/** History kept after a participant left: longer than any lag worth configuring. */
const KEEP_MS = 5 * 60_000;

export class Participants extends Map<string, Participant> implements ParticipantList {
  private readonly history: PresenceEntry[] = [];

  override set(sessionId: string, p: Participant): this {
    if (!this.has(sessionId)) {
      const now = Date.now();
      this.prune(now);
      this.history.push({ sessionId, userName: p.userName, joinedAtMs: now });
    }
    return super.set(sessionId, p);
  }

  override delete(sessionId: string): boolean {
    const had = super.delete(sessionId);
    if (had) {
      const open = this.history.findLast((e) => e.sessionId === sessionId && e.leftAtMs === undefined);
      if (open) open.leftAtMs = Date.now();
    }
    return had;
  }

  /** Who was in the room at `atMs`. */
  presentAt(atMs: number): PresenceEntry[] {
    return this.history.filter((e) => e.joinedAtMs <= atMs && (e.leftAtMs === undefined || e.leftAtMs > atMs));
  }

  private prune(now: number): void {
    const cut = this.history.findIndex((e) => e.leftAtMs === undefined || e.leftAtMs > now - KEEP_MS);
    if (cut > 0) this.history.splice(0, cut);
  }
}
