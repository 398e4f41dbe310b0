/**
 * A reload reaches every replica (docs/operations.md, "Reload"; docs/scaling.md): the replica that
 * was asked (POST /admin/reload) reloads itself, then PUBLISHes on `pb:{ns}:reload`; every other
 * replica, SUBSCRIBEd on its own connection (a subscribed connection serves nothing else), reloads
 * its own bots from its own BOTS_DIR. Each replica's versions ride in its heartbeat's meta
 * (`bots`, `botsGeneration`), which /status shows per replica.
 *
 * Redis Pub/Sub delivers at most once, to who is subscribed then: a replica cut off from Redis at
 * that moment misses the reload. /status shows it (its versions differ); reload again.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import type { Fleet } from './fleet.js';

export interface ReloadMessage {
  /** The replica that reloaded first (it does not reload again on its own message). */
  from: string;
  atMs: number;
}

export class FleetReload<P> {
  private readonly sub: Redis;
  private readonly channel: string;
  private closed = false;

  constructor(
    private readonly fleet: Fleet<P>,
    private readonly onReload: (m: ReloadMessage) => void,
    private readonly logger: Logger,
  ) {
    this.channel = `${fleet.prefix}reload`;
    // Same options as the command connection, but subscribed: commands offline are queued, not refused.
    this.sub = fleet.redis.duplicate({ enableOfflineQueue: true, connectionName: 'patchbay-fleet-reload' });
    this.sub.on('error', () => undefined);
    this.sub.on('message', (channel: string, raw: string) => {
      if (channel !== this.channel || this.closed) return;
      let m: ReloadMessage;
      try {
        m = JSON.parse(raw) as ReloadMessage;
      } catch {
        return;
      }
      if (m.from === fleet.replicaId) return;
      this.logger.info({ from: m.from }, 'fleet: reload requested by another replica');
      this.onReload(m);
    });
  }

  async start(): Promise<void> {
    try {
      await this.sub.connect();
      await this.sub.subscribe(this.channel);
    } catch (err) {
      // ioredis re-subscribes by itself once connected again.
      this.logger.warn({ err: errorMessage(err) }, 'fleet: could not subscribe to reloads yet');
    }
  }

  /** Tells the other replicas to reload; resolves with how many were listening. */
  async publish(): Promise<number> {
    const m: ReloadMessage = { from: this.fleet.replicaId, atMs: Date.now() };
    return this.fleet.op('reloadPublish', () => this.fleet.redis.publish(this.channel, JSON.stringify(m)));
  }

  /** This replica's versions, in its heartbeat (meta values are strings or numbers: the map as JSON). */
  setVersions(generation: number, bots: Record<string, string>): void {
    this.fleet.opts.meta.bots = JSON.stringify(bots);
    this.fleet.opts.meta.botsGeneration = generation;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sub.disconnect();
  }
}
