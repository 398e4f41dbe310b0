/**
 * Readiness in fleet mode (issue 21, item 4): a replica whose Redis has never answered is not
 * ready, for at most FLEET_READY_WAIT_MS after it started; then it serves alone (degraded) with one
 * loud log line, as a wrong or unreachable REDIS_URL otherwise would unnoticed.
 */
import type { Logger } from 'pino';

/** What this needs of the Fleet: whether it is degraded now, and its transitions. */
export interface DegradedSource {
  readonly degraded: boolean;
  on(event: 'degraded', listener: (degraded: boolean) => void): unknown;
}

export class RedisReadiness {
  private reached = false;
  private waitOver = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly fleet: DegradedSource,
    private readonly waitMs: number,
    private readonly log: Pick<Logger, 'error' | 'info'>,
  ) {
    fleet.on('degraded', (d) => {
      if (!d) this.reachedNow();
    });
  }

  /** After the fleet's first connection attempt: reached, or wait (bounded) for it. */
  started(): void {
    if (!this.fleet.degraded) return this.reachedNow();
    this.timer = setTimeout(() => {
      this.waitOver = true;
      if (!this.reached)
        this.log.error(
          { waitedMs: this.waitMs },
          'FLEET: Redis not reached since start-up (check REDIS_URL); serving ALONE, degraded: no fleet-wide exactly-once, queue or rate limits',
        );
    }, this.waitMs);
    this.timer.unref();
  }

  /** True while /health/ready should say "not yet": Redis never reached and the wait not over. */
  get waiting(): boolean {
    return !this.reached && !this.waitOver;
  }

  private reachedNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.reached = true;
  }
}
