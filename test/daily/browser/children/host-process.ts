/**
 * A process that owns a BrowserHost (as the service's main process does with CALL_CLIENT=daily),
 * for test/daily/browser/orphans.test.ts: starts `BROWSERS` browsers, prints `up <pid>…`, then
 * waits to be killed.
 */
import { pino } from 'pino';
import { BrowserHost } from '../../../../src/daily/browser/host.js';

const host = new BrowserHost({
  chromiumPath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  browsers: Number(process.env.BROWSERS ?? '2'),
  botsPerBrowser: 2,
  logger: pino({ level: 'silent' }),
});
await host.start();
console.log(
  `up ${host
    .stats()
    .browsers.map((b) => b.pid)
    .join(' ')}`,
);
setInterval(() => undefined, 60_000);
