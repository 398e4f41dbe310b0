/**
 * The browser host's own supervision, with Debian's Chromium: leases by load, a missing Chromium,
 * a browser that hangs (SIGSTOP) is killed and restarted, one that crashes is restarted.
 */
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ChromiumMissingError } from '../../../src/daily/browser/errors.js';
import { BrowserHost } from '../../../src/daily/browser/host.js';
import { isAlive, waitFor } from '../../helpers/ops.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPING parts of test/daily-browser-host.test.ts: ${CHROMIUM} is missing`);
const logger = pino({ level: 'silent' });

let host: BrowserHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

describe('browser host', () => {
  it('a missing Chromium is a start-up error naming the path', async () => {
    host = new BrowserHost({ chromiumPath: '/nonexistent/chromium', browsers: 1, botsPerBrowser: 2, logger });
    const err = await host.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChromiumMissingError);
    expect((err as Error).message).toContain('/nonexistent/chromium');
  });

  it.skipIf(!haveChromium)(
    'leases the least-loaded browser; a lease of a restarted browser no longer counts',
    async () => {
      host = new BrowserHost({ chromiumPath: CHROMIUM, browsers: 2, botsPerBrowser: 2, logger });
      await host.start();
      const leases = [host.lease()!, host.lease()!, host.lease()!, host.lease()!];
      expect(leases.map((l) => l.browserId).sort()).toEqual([0, 0, 1, 1]);
      expect(host.stats().browsers.map((b) => b.bots)).toEqual([2, 2]);
      // Over capacity: still served (least loaded), never refused.
      const fifth = host.lease()!;
      expect(host.stats().browsers[fifth.browserId]!.bots).toBe(3);
      fifth.release();
      fifth.release(); // idempotent
      expect(host.stats().browsers.map((b) => b.bots)).toEqual([2, 2]);
      const on0 = leases.filter((l) => l.browserId === 0);
      const oldPid = host.stats().browsers[0]!.pid!;
      const lost: string[] = [];
      host.onBrowserLost = (_id, reason) => lost.push(reason);
      host.kill(0, 'test');
      await waitFor('restart', () => host!.stats().restarts === 1, 10_000);
      await host.waitUp(0);
      expect(lost[0]).toMatch(/exited \(SIGKILL\)/);
      expect(host.stats().browsers[0]!.pid).not.toBe(oldPid);
      expect(host.stats().browsers[0]!.bots).toBe(0);
      for (const l of on0) l.release();
      expect(host.stats().browsers.map((b) => b.bots)).toEqual([0, 2]);
      expect(host.lease()!.browserId).toBe(0);
    },
    60_000,
  );

  it.skipIf(!haveChromium)(
    'a browser that stops answering (SIGSTOP) is killed and restarted',
    async () => {
      host = new BrowserHost({
        chromiumPath: CHROMIUM,
        browsers: 1,
        botsPerBrowser: 2,
        logger,
        healthIntervalMs: 200,
        healthTimeoutMs: 1_500,
      });
      await host.start();
      const pid = host.stats().browsers[0]!.pid!;
      process.kill(pid, 'SIGSTOP');
      const t0 = Date.now();
      await waitFor('restart', () => host!.stats().restarts === 1, 15_000);
      expect(Date.now() - t0).toBeLessThan(8_000);
      await host.waitUp(0);
      expect(isAlive(pid)).toBe(false);
      expect(host.stats().browsers[0]!.state).toBe('up');
    },
    60_000,
  );
});
