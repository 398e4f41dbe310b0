/**
 * Refusals of unauthenticated requests (bad signatures, missing tokens, other origins) are logged
 * per source and interval, not per request: the first refusal of a kind from a source is written
 * at once, the repeats are counted, and at the end of the interval one summary line per source and
 * kind says how many there were (AUTH_FAILURE_LOG_INTERVAL_MS). A flood of forged requests cannot
 * flood the log too. At most 10 000 sources are tracked per interval; beyond that they are counted
 * under "other". Requests for no route (404) and other refused requests (4xx) are logged the same
 * way, with their path cut short (`loggedPath`): a flood of long URLs costs a few short lines.
 */
import type { Logger } from '../../core/logger.js';

const MAX_KEYS = 10_000;
/** The longest path a refusal line carries: a request cannot make its own log line long. */
export const MAX_LOGGED_PATH = 120;

/** A request's path for a log line: no query string (it may carry a token), cut to `MAX_LOGGED_PATH` characters. */
export function loggedPath(url: string | undefined): string {
  const p = (url ?? '').split('?')[0]!;
  return p.length <= MAX_LOGGED_PATH ? p : `${p.slice(0, MAX_LOGGED_PATH)}…(${p.length} chars)`;
}

interface Entry {
  source: string;
  msg: string;
  fields: Record<string, unknown>;
  repeats: number;
}

export class RefusalLog {
  private entries = new Map<string, Entry>();
  private overflow = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    readonly intervalMs: number,
  ) {
    this.timer = setInterval(() => this.flush(), intervalMs);
    this.timer.unref();
  }

  /** One refusal of kind `msg` from `source`; `fields` go on the line (the last ones on the summary). */
  note(source: string, msg: string, fields: Record<string, unknown> = {}): void {
    const key = `${source}\0${msg}`;
    const e = this.entries.get(key);
    if (e) {
      e.repeats++;
      e.fields = fields;
      return;
    }
    if (this.entries.size >= MAX_KEYS) {
      this.overflow++;
      return;
    }
    this.entries.set(key, { source, msg, fields, repeats: 0 });
    this.log.warn({ ...fields, ip: source }, msg);
  }

  /** Writes the summaries of the interval that ends now. */
  flush(): void {
    for (const e of this.entries.values()) {
      if (e.repeats > 0) this.log.warn({ ...e.fields, ip: e.source, count: e.repeats, intervalMs: this.intervalMs }, `${e.msg} (repeated)`);
    }
    if (this.overflow > 0)
      this.log.warn(
        { count: this.overflow, intervalMs: this.intervalMs, sources: `more than ${MAX_KEYS}` },
        'requests refused from other sources',
      );
    this.entries = new Map();
    this.overflow = 0;
  }

  stop(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
