/**
 * SIGTERM with 20 live calls on the real server process (`node --import tsx src/app/main.ts`,
 * its embedded emulator driven over the control API): every call finishes within the drain, each
 * with exactly one `call ended` line, the process exits 0 and leaves no worker behind. The log
 * lines carry no full phone number.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, test } from 'vitest';
import { childPids, FIXTURE_BOTS, getJson, isAlive, postJson, startServerProcess, waitFor, type ServerProcess } from '../helpers/ops.js';

const NUMBER = '+15550007000';
const CALLER = '+15557650123';
const LIVE_CALLS = 20;
const SECRET = randomBytes(32).toString('base64');

interface EmuCall {
  id: string;
  callId: string;
  state: string;
  reason?: string;
  transcript: Array<{ who: string; text: string }>;
}

let server: ServerProcess | undefined;
afterAll(async () => {
  await server?.kill();
});

describe('SIGTERM with 20 live calls (real server process)', () => {
  test(
    'all 20 finish within the drain, one outcome each, exit 0, no worker left, no full number logged',
    { timeout: 180_000 },
    async () => {
      server = await startServerProcess({
        DAILY_PINLESS_HMAC: SECRET,
        EMULATOR_NUMBERS: NUMBER,
        BOTS_DIR: FIXTURE_BOTS,
        DEFAULT_BOT: 'linger',
        MAX_CONCURRENT_BOTS: String(LIVE_CALLS),
        MAX_QUEUED_CALLS: '0',
        IDLE_WORKERS: '4',
        DRAIN_TIMEOUT_MS: '60000',
        WORKER_CLOSE_TIMEOUT_MS: '2000',
        // 20 cold worker starts on 2 cores: generous call deadlines.
        DIALIN_READY_TIMEOUT_MS: '60000',
        WORKER_INIT_TIMEOUT_MS: '60000',
        WORKER_PING_TIMEOUT_MS: '30000',
      });
      const s = server;
      // Daily would keep the callers on hold far longer than a loaded machine needs to start 20 workers.
      const placed: EmuCall[] = [];
      for (let i = 0; i < LIVE_CALLS; i++) {
        const r = await postJson<EmuCall>(`${s.emulator}/_emulator/calls`, { to: NUMBER, from: CALLER });
        expect(r.status).toBe(200);
        placed.push(r.body);
      }
      await waitFor(
        'all 20 bots to greet their callers',
        async () => {
          const all = (await getJson<{ data: EmuCall[] }>(`${s.emulator}/_emulator/calls`)).body.data;
          const mine = all.filter((c) => placed.some((p) => p.id === c.id));
          const over = mine.filter((c) => c.state === 'ended');
          if (over.length > 0) throw new Error(`calls ended before the signal: ${over.map((c) => c.reason).join(', ')}`);
          return (
            mine.filter((c) => c.state === 'connected' && c.transcript.some((t) => t.who === 'bot' && t.text === 'lingering')).length ===
            LIVE_CALLS
          );
        },
        150_000,
        250,
      );
      const workers = childPids(s.pid);
      expect(workers.length).toBeGreaterThanOrEqual(LIVE_CALLS);

      const t0 = Date.now();
      s.proc.kill('SIGTERM');
      await s.waitLine((l) => l.msg === 'draining: no new calls; live calls may finish');
      expect((await getJson(`${s.url}/health/ready`)).status).toBe(503);
      // The callers finish their calls during the drain: each presses a key, the bot says bye and hangs up.
      await Promise.all(placed.map((c) => postJson(`${s.emulator}/_emulator/calls/${c.id}/actions`, { press: '1' })));
      const exit = await s.exited;
      const drainMs = Date.now() - t0;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(drainMs).toBeLessThan(60_000);
      console.info(`drain summary ${JSON.stringify({ liveCalls: LIVE_CALLS, workers: workers.length, sigtermToExitMs: drainMs })}`);

      const ended = s.lines.filter((l) => l.msg === 'call ended');
      expect(ended).toHaveLength(LIVE_CALLS);
      expect(new Set(ended.map((l) => l.callId)).size).toBe(LIVE_CALLS);
      expect(new Set(ended.map((l) => l.callId))).toEqual(new Set(placed.map((p) => p.callId)));
      for (const l of ended)
        expect(l).toMatchObject({ outcome: 'completed', detail: 'caller pressed 1', from: `********${CALLER.slice(-4)}` });
      expect(s.lines.some((l) => l.msg === 'drain timeout: hanging up on live calls')).toBe(false);
      await waitFor('every worker to be gone', () => workers.every((p) => !isAlive(p)), 15_000);
      // Phone numbers never appear in full, in any line.
      const raw = s.lines.map((l) => JSON.stringify(l)).join('\n') + s.stderr();
      expect(raw).not.toContain(CALLER);
      expect(raw).not.toContain(CALLER.slice(1));
      // The service's own number appears only in the start-up line that lists its configured numbers.
      expect(s.lines.filter((l) => JSON.stringify(l).includes(NUMBER)).map((l) => l.msg)).toEqual([
        expect.stringMatching(/^place a call with/),
      ]);
      // No secret either.
      expect(raw).not.toContain(SECRET);
    },
  );
});
