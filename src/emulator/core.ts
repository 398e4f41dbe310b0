/**
 * The emulated platform, independent of HTTP: the parts below, wired once here. REST (rest.ts)
 * and WebSocket (ws.ts) call into them; bots hear back through `BotParticipant.send`.
 *
 *   timers ─ latencies ─ faults ─ Daily's rate limits               (clock, misbehaviour, limits)
 *   pinless (domain config) ─ pinless webhook sender                 (held calls' webhook)
 *   rooms ─ tokens ─ sessions (participants, dialin-ready) ─ actions (what bots do)
 *   calls (registry) ─ dialin (held calls, pinlessCallUpdate, CallHost)
 *   domain webhooks (webhooks.ts) ← observer ← sessions, dialin
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { Actions } from './actions.js';
import { CallRegistry } from './call-registry.js';
import { DialIn } from './dialin.js';
import { DialOut } from './dialout.js';
import { Faults } from './faults.js';
import { LatencySettings } from './latencies.js';
import type { Room } from './model.js';
import { PinlessStore } from './pinless.js';
import { PinlessWebhookSender } from './pinless-webhook.js';
import { Recordings } from './recordings.js';
import { DailyRateLimits, type RateLimitSettings } from './rate-limits.js';
import { RoomStore } from './rooms.js';
import { Sessions } from './sessions.js';
import { Timers } from './timers.js';
import { MeetingTokens } from './tokens.js';
import type { EmulatorSnapshot, Latencies, RequestLogEntry } from './types.js';
import { DomainWebhooks, webhookObserver, type DomainWebhooksOptions } from './webhooks.js';

export interface CoreOptions {
  domainName: string;
  logger: Logger;
  latencies?: Partial<Latencies>;
  holdTimeoutMs: number;
  dtmfGapMs: number;
  webhookTimeoutMs: number;
  domainWebhooks?: Omit<DomainWebhooksOptions, 'domainId' | 'timers' | 'log'>;
  /** The HTTP origin (room URLs); known once the server listens. */
  origin: () => string;
  /** The domain's API key: it signs meeting tokens (REST-made and self-signed alike). */
  apiKey: string;
  /** Daily's rate limits (default: on, domain-wide). */
  rateLimits?: RateLimitSettings | boolean;
  /** Where cloud recordings are written (default: a fresh temp directory). */
  recordingsDir?: string;
}

/** Open WebSockets, counted by ws.ts, for snapshots. */
export interface SocketCounts {
  clients: number;
  sockets: number;
}

export class EmulatorCore {
  readonly log: Logger;
  readonly timers = new Timers();
  readonly faults = new Faults();
  readonly rateLimits: DailyRateLimits;
  readonly latencies: LatencySettings;
  /** Stable for a domain (its name and API key): a restarted emulator is the same Daily domain. */
  readonly domainId: string;
  /** The domain's SIP network identity, sent as `callDomain` in webhooks (stable likewise). */
  readonly callDomain: string;
  readonly pinless: PinlessStore;
  readonly pinlessWebhook: PinlessWebhookSender;
  readonly rooms: RoomStore;
  readonly tokens: MeetingTokens;
  readonly calls: CallRegistry;
  readonly sessions: Sessions;
  readonly actions: Actions;
  readonly dialin: DialIn;
  readonly dialOut: DialOut;
  readonly webhooks: DomainWebhooks;
  readonly recordings: Recordings;
  /** The last 10 000 /v1 requests, oldest first. */
  readonly requestLog: RequestLogEntry[] = [];
  private closed = false;

  constructor(readonly opts: CoreOptions) {
    this.domainId = stableUuid(`domain\0${opts.domainName}\0${opts.apiKey}`);
    this.callDomain = stableUuid(`call-domain\0${opts.domainName}\0${opts.apiKey}`);
    const logger = (this.log = opts.logger);
    const timers = this.timers;
    this.latencies = new LatencySettings(opts.latencies ?? {});
    this.rateLimits = new DailyRateLimits(opts.rateLimits ?? true);
    this.webhooks = new DomainWebhooks({ domainId: this.domainId, timers, log: logger, ...opts.domainWebhooks });
    const observer = webhookObserver(this.webhooks, this.domainId);
    this.rooms = new RoomStore({ domainName: opts.domainName, origin: opts.origin, logger });
    this.pinless = new PinlessStore(this.rooms.sipHost);
    this.pinlessWebhook = new PinlessWebhookSender({ timers, timeoutMs: opts.webhookTimeoutMs, logger });
    this.tokens = new MeetingTokens({ domainId: this.domainId, key: Buffer.from(opts.apiKey, 'utf8') });
    this.calls = new CallRegistry(timers);
    this.recordings = new Recordings({
      logger,
      ...(opts.recordingsDir ? { dir: opts.recordingsDir } : {}),
      secret: `recordings\0${opts.apiKey}`,
      origin: opts.origin,
      broadcast: (room, event, payload) => this.sessions.broadcast(room, event, payload),
    });
    this.sessions = new Sessions({
      recordings: this.recordings,
      rooms: this.rooms,
      calls: this.calls,
      tokens: this.tokens,
      timers,
      latencies: this.latencies,
      faults: this.faults,
      observer,
      logger,
    });
    this.dialOut = new DialOut({
      rooms: this.rooms,
      sessions: this.sessions,
      calls: this.calls,
      timers,
      latencies: this.latencies,
      callDomain: this.callDomain,
      dtmfGapMs: opts.dtmfGapMs,
      rateLimits: this.rateLimits,
      logger,
    });
    this.actions = new Actions({ sessions: this.sessions, dialOut: this.dialOut, timers, logger });
    this.dialin = new DialIn({
      callDomain: this.callDomain,
      rooms: this.rooms,
      sessions: this.sessions,
      calls: this.calls,
      pinless: this.pinless,
      webhook: this.pinlessWebhook,
      timers,
      latencies: this.latencies,
      observer,
      holdTimeoutMs: opts.holdTimeoutMs,
      dtmfGapMs: opts.dtmfGapMs,
      logger,
    });
  }

  get domainName(): string {
    return this.opts.domainName;
  }

  /** Domain object as GET / returns it. */
  domainJson(): Record<string, unknown> {
    return {
      domain_name: this.opts.domainName,
      domain_id: this.domainId,
      sfu_impl: 'mediasoup',
      config: { pinless_dialin: this.pinless.plain() },
    };
  }

  /** POST /rooms: the room, its `exp` armed. */
  createRoom(body: unknown): Room {
    const room = this.rooms.create(body);
    this.sessions.armExpiry(room);
    return room;
  }

  /** POST /rooms/:name: the new properties, `exp` re-armed. */
  updateRoom(name: string, body: unknown): Room {
    const room = this.rooms.update(name, body);
    room.expCancel?.();
    this.sessions.armExpiry(room);
    return room;
  }

  logRequest(e: RequestLogEntry): void {
    this.requestLog.push(e);
    if (this.requestLog.length > 10_000) this.requestLog.splice(0, this.requestLog.length - 10_000);
  }

  snapshot(counts: SocketCounts): EmulatorSnapshot {
    return {
      rooms: [...this.rooms.values()].map((r) => ({
        name: r.name,
        sipEndpoints: r.endpoints.map((e) => ({ uri: e.uri, ready: e.ready, ...(e.callId ? { callId: e.callId } : {}) })),
        participants: [...r.participants.values()].map((p) => ({
          sessionId: p.sessionId,
          userName: p.userName,
          isSip: p.kind === 'sip',
          owner: p.kind === 'bot' && p.owner,
        })),
        transcription: r.transcription,
      })),
      calls: [...this.calls.values()].map((c) => ({
        id: c.id,
        callId: c.callId,
        to: c.to,
        state: c.state,
        ...(c.reason ? { reason: c.reason } : {}),
      })),
      clients: counts.clients,
      sockets: counts.sockets,
      timers: this.timers.size,
      webhooksInFlight: this.pinlessWebhook.inFlight + this.webhooks.inFlight,
    };
  }

  /** Ends calls, cancels timers and webhooks. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.webhooks.close();
    this.dialin.close();
    this.dialOut.close();
    this.pinlessWebhook.close();
    this.timers.clearAll();
  }
}

/** A UUID-shaped id derived from `seed` (version 4 layout, deterministic). */
function stableUuid(seed: string): string {
  const b = createHash('sha256').update(seed).digest();
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
