/**
 * Chromium process handling for the daily client: launch flags, a private user-data dir per
 * browser, and finding (and, as a last resort, killing) the processes that belong to it.
 *
 * Every Chromium process we start carries `--user-data-dir=<our dir>` on its command line
 * (browser, zygotes, renderers, utilities and crashpad handlers alike), so the dir is the
 * marker by which we find them in /proc.
 */
import { access, constants, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChromiumMissingError } from './errors.js';

export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags for a headless bot browser. `--headless` is also implied by playwright's `headless: true`. */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  // Chromium 150's new headless mode preloads omnibox WebUI pages (two extra renderers per window,
  // i.e. per bot context): a bot has no omnibox. The rest: what Playwright disables by default (a
  // later --disable-features replaces an earlier one, so ours must carry them): start-up network
  // chatter (optimisation hints, network time, AI mode, search preconnect), media router, lens.
  '--disable-features=' +
    [
      'PreloadTopChromeWebUI',
      'WebUIOmniboxPopup',
      'WebUIOmniboxAimPopup',
      'OmniboxAimPopup',
      'AvoidUnnecessaryBeforeUnloadCheckSync',
      'DestroyProfileOnBrowserClose',
      'HttpsUpgrades',
      'LensOverlay',
      'MediaRouter',
      'PaintHolding',
      'OptimizationHints',
      'NetworkTimeServiceQuerying',
      'AimEnabled',
      'PreconnectToSearch',
    ].join(','),
];

/**
 * Added for browsers the host launches itself (Playwright adds the like for the per-worker layout):
 * no throttling of pages that are not in front (every bot page is a background tab to Chromium),
 * no /dev/shm (64 MB in a container), no extensions, popups, hang monitor or crash reporter.
 */
export const HOST_CHROMIUM_FLAGS: readonly string[] = [
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
  '--disable-ipc-flooding-protection',
  '--disable-dev-shm-usage',
  '--disable-extensions',
  '--disable-component-extensions-with-background-pages',
  '--disable-default-apps',
  '--disable-hang-monitor',
  '--disable-popup-blocking',
  '--disable-breakpad',
  '--no-default-browser-check',
  '--password-store=basic',
  '--use-mock-keychain',
  '--mute-audio',
];

/** Prefix of our user-data dirs; the creating process's pid follows, so stale dirs can be swept. */
export const USER_DATA_DIR_PREFIX = 'patchbay-chromium-';

export async function assertChromiumExecutable(executablePath: string): Promise<void> {
  try {
    await access(executablePath, constants.X_OK);
  } catch (err) {
    throw new ChromiumMissingError(executablePath, err);
  }
}

export async function makeUserDataDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `${USER_DATA_DIR_PREFIX}${process.pid}-`));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Cleans up after processes of ours that no longer exist: the Chromium processes still carrying
 * their user-data dir (orphans of a process killed with SIGKILL, re-parented to init; a browser
 * tied to its launcher's pipe exits by itself, one that was not stays) are SIGKILLed, then the dirs
 * are removed. A dir whose creating pid is alive (possibly reused) is left alone. Best effort.
 */
export async function sweepOrphanBrowsers(): Promise<{ removed: string[]; killed: number }> {
  const removed: string[] = [];
  let killed = 0;
  let entries: string[];
  try {
    entries = await readdir(os.tmpdir());
  } catch {
    return { removed, killed };
  }
  for (const name of entries) {
    if (!name.startsWith(USER_DATA_DIR_PREFIX)) continue;
    const pid = Number.parseInt(name.slice(USER_DATA_DIR_PREFIX.length).split('-')[0] ?? '', 10);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || pidAlive(pid)) continue;
    const dir = path.join(os.tmpdir(), name);
    killed += await killProcessesWithArg(dir);
    if ((await waitForNoProcesses(dir, 2_000)).length > 0) continue;
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    removed.push(dir);
  }
  return { removed, killed };
}

/** `sweepOrphanBrowsers`, for the per-worker layout: the dirs removed. */
export async function sweepStaleUserDataDirs(): Promise<string[]> {
  return (await sweepOrphanBrowsers()).removed;
}

/** Pids of live processes whose command line contains `marker` (Linux /proc). */
export async function findProcessesWithArg(marker: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  await Promise.all(
    entries.map(async (e) => {
      if (!/^\d+$/.test(e)) return;
      const pid = Number(e);
      if (pid === process.pid) return;
      try {
        const cmd = await readFile(`/proc/${e}/cmdline`, 'latin1');
        if (cmd.includes(marker)) {
          // Zombies keep their pid until reaped but have an empty cmdline, so a match is live.
          pids.push(pid);
        }
      } catch {
        // The process went away while we looked.
      }
    }),
  );
  return pids.sort((a, b) => a - b);
}

/** SIGKILLs every process carrying `marker`; returns how many were signalled. */
export async function killProcessesWithArg(marker: string): Promise<number> {
  const pids = await findProcessesWithArg(marker);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  return pids.length;
}

/** Waits until no process carries `marker`, up to `timeoutMs`. Returns the pids still alive. */
export async function waitForNoProcesses(marker: string, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await findProcessesWithArg(marker);
    if (pids.length === 0 || Date.now() >= deadline) return pids;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every descendant of `rootPid` (Linux /proc), with its command line. */
export async function descendantsOf(rootPid: number): Promise<{ pid: number; cmdline: string }[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const parent = new Map<number, number>();
  await Promise.all(
    entries.map(async (e) => {
      if (!/^\d+$/.test(e)) return;
      try {
        const stat = await readFile(`/proc/${e}/stat`, 'latin1');
        parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch {
        // gone meanwhile
      }
    }),
  );
  const out: { pid: number; cmdline: string }[] = [];
  const want = new Set([rootPid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!want.has(pid) && want.has(ppid)) {
        want.add(pid);
        grew = true;
      }
    }
  }
  want.delete(rootPid);
  await Promise.all(
    [...want].map(async (pid) => {
      try {
        out.push({ pid, cmdline: (await readFile(`/proc/${pid}/cmdline`, 'latin1')).replace(/\0/g, ' ') });
      } catch {
        // gone meanwhile
      }
    }),
  );
  return out.sort((a, b) => a.pid - b.pid);
}

/** The renderer processes of the browser whose pid is `browserPid`. */
export async function rendererPidsOf(browserPid: number): Promise<number[]> {
  return (await descendantsOf(browserPid)).filter((p) => p.cmdline.includes('--type=renderer')).map((p) => p.pid);
}

/** Proportional set size of `pid` in bytes (0 when it is gone). */
export async function pssBytes(pid: number): Promise<number> {
  try {
    const txt = await readFile(`/proc/${pid}/smaps_rollup`, 'latin1');
    return Number(/^Pss:\s+(\d+) kB/m.exec(txt)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) of `pid` in clock ticks, or undefined when it is gone. */
export async function cpuTicks(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}
