/**
 * `npm start` passes signals through (issue 11, item 8c): SIGTERM to the npm process reaches the
 * server (no intermediate shell holding it), which drains and exits; the port closes and no
 * process of the tree (server, workers) is left behind.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { childPids, isAlive, ROOT, waitFor } from '../helpers/ops.js';

/** Every descendant of `pid`. */
function tree(pid: number): number[] {
  const out: number[] = [];
  for (const c of childPids(pid)) out.push(c, ...tree(c));
  return out;
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

describe('npm start', () => {
  it('SIGTERM to npm stops the server: the port closes, no process is left', { timeout: 60_000 }, async () => {
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        HOST: '127.0.0.1',
        PORT: '0',
        EMULATOR_PORT: '0',
        IDLE_WORKERS: '1',
        CALL_RECORDS_PATH: ':memory:',
        DRAIN_TIMEOUT_MS: '5000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    npm.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    npm.stderr.resume();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      npm.once('exit', (code, signal) => r({ code, signal })),
    );
    let pids: number[] = [];
    try {
      const port = await waitFor(
        'the service to listen',
        () => {
          const m = /"url":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(out);
          return m ? Number(m[1]) : undefined;
        },
        40_000,
      );
      // The server and its worker, under npm.
      await waitFor('a worker', () => tree(npm.pid!).length >= 2 || undefined, 20_000);
      pids = tree(npm.pid!);
      expect(await portOpen(port)).toBe(true);

      npm.kill('SIGTERM');
      const { code } = await exited;
      // npm waits for the server, which drained and exited cleanly.
      expect(code).toBe(0);
      expect(out).toContain('draining');
      await waitFor('the port to close', async () => !(await portOpen(port)) || undefined, 10_000);
      await waitFor('every process of the tree to exit', () => pids.every((p) => !isAlive(p)) || undefined, 10_000);
    } finally {
      for (const p of [npm.pid!, ...pids]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  });
});
