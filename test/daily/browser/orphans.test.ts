/**
 * Issue 21, item 8: Chromium must not outlive the service. A process that owns a browser host is
 * killed with SIGKILL: its browsers (and their renderers, zygotes, utilities) exit by themselves,
 * because they are tied to a pipe only that process held. And browsers that an earlier process did
 * leave (an older build, a Chromium ignoring the pipe) are killed by the next host's start().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  findProcessesWithArg,
  killProcessesWithArg,
  USER_DATA_DIR_PREFIX,
  waitForNoProcesses,
} from '../../../src/daily/browser/chromium.js';
import { BrowserHost } from '../../../src/daily/browser/host.js';
import { ROOT } from '../../helpers/ops.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`SKIPPING test/daily/browser/orphans.test.ts: ${CHROMIUM} is missing`);

const markers: string[] = [];
let host: BrowserHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
  for (const m of markers.splice(0)) await killProcessesWithArg(m);
});

/** A pid that is no longer alive (a process that ran and exited). */
async function deadPid(): Promise<number> {
  const p = spawn('true');
  await new Promise((r) => p.once('exit', r));
  return p.pid!;
}

describe.skipIf(!haveChromium)('Chromium dies with the service', () => {
  it('kill -9 of the process owning the browser host: every Chromium process of it exits within seconds', async () => {
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'test/daily/browser/children/host-process.ts'], {
      cwd: ROOT,
      env: { ...process.env, BROWSERS: '2', CHROMIUM },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const marker = `${path.join(os.tmpdir(), USER_DATA_DIR_PREFIX)}${child.pid}-`;
    markers.push(marker);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += String(d);
        if (/^up \d+ \d+/m.test(out)) resolve();
      });
      child.once('exit', () => reject(new Error(`host process exited early: ${out}`)));
    });
    // Browser, zygotes, renderers, utilities: several processes per browser.
    expect((await findProcessesWithArg(marker)).length).toBeGreaterThanOrEqual(4);
    child.kill('SIGKILL');
    // Before: all of them stayed, re-parented to init, for good.
    expect(await waitForNoProcesses(marker, 10_000)).toEqual([]);
  }, 60_000);

  it("start() kills the browsers a dead process of ours left, and removes their dirs; a live process's are kept", async () => {
    // An orphaned browser as an older build left it: launched without the pipe, its owner gone.
    const dead = await deadPid();
    const dir = mkdtempSync(path.join(os.tmpdir(), `${USER_DATA_DIR_PREFIX}${dead}-host0-`));
    markers.push(dir);
    const orphan = spawn(
      CHROMIUM,
      ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${dir}`, '--remote-debugging-port=0', 'about:blank'],
      {
        stdio: 'ignore',
        detached: true,
      },
    );
    orphan.unref();
    // One of a live process (this one's pid: the sweep leaves it).
    const mine = mkdtempSync(path.join(os.tmpdir(), `${USER_DATA_DIR_PREFIX}${process.pid}-other-`));
    markers.push(mine);
    const kept = spawn(
      CHROMIUM,
      ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${mine}`, '--remote-debugging-port=0', 'about:blank'],
      {
        stdio: 'ignore',
      },
    );
    const deadline = Date.now() + 15_000;
    while ((await findProcessesWithArg(dir)).length < 2 || (await findProcessesWithArg(mine)).length < 2) {
      if (Date.now() > deadline) throw new Error('the stand-in browsers did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    host = new BrowserHost({ chromiumPath: CHROMIUM, browsers: 1, botsPerBrowser: 2, logger: pino({ level: 'silent' }) });
    await host.start();
    expect(await findProcessesWithArg(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect((await findProcessesWithArg(mine)).length).toBeGreaterThan(0);
    kept.kill('SIGKILL');
  }, 60_000);
});
