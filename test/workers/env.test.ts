/**
 * Workers do not inherit the service's secrets (issue 11, item 8a): the real server process with
 * every secret in its environment forks workers whose /proc/<pid>/environ holds none of them
 * (nor any other variable outside the minimal set), and those workers still answer a real call
 * through the embedded emulator. WORKER_ENV_PASSTHROUGH passes named extras.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { workerEnv } from '../../src/core/config.js';
import { childPids, FIXTURE_BOTS, getJson, postJson, startServerProcess, waitFor, type ServerProcess } from '../helpers/ops.js';

const NUMBER = '+15550003100';
const SECRETS = {
  DAILY_PINLESS_HMAC: randomBytes(32).toString('base64'),
  DAILY_WEBHOOK_HMAC: randomBytes(32).toString('base64'),
  DAILY_WEBHOOK_BASIC_AUTH: `daily:${randomBytes(12).toString('hex')}`,
  DASHBOARD_TOKEN: `dash_${randomBytes(16).toString('hex')}`,
  OPENAI_API_KEY: `sk-${randomBytes(20).toString('hex')}`,
  EMULATOR_API_KEY: `emu_${randomBytes(12).toString('hex')}`,
  SOME_OTHER_SECRET: `other_${randomBytes(12).toString('hex')}`,
};

const environ = (pid: number): Record<string, string> =>
  Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );

const servers: ServerProcess[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
});

describe('worker environment', () => {
  it('keeps the minimal set and the names passed through, nothing else', () => {
    const env = workerEnv({
      PATH: '/bin',
      HOME: '/h',
      LC_ALL: 'C',
      DAILY_API_KEY: 'k',
      DASHBOARD_TOKEN: 't',
      CRM_KEY: 'c',
      WORKER_ENV_PASSTHROUGH: 'CRM_KEY',
    });
    expect(env).toEqual({
      PATH: '/bin',
      HOME: '/h',
      LC_ALL: 'C',
      CRM_KEY: 'c',
    });
  });

  it('a worker of the real server has no secret in /proc/<pid>/environ and still answers a call', { timeout: 60_000 }, async () => {
    const s = await startServerProcess({
      ...SECRETS,
      EMULATOR_NUMBERS: NUMBER,
      BOTS_DIR: FIXTURE_BOTS,
      DEFAULT_BOT: 'linger',
      IDLE_WORKERS: '1',
      WORKER_ENV_PASSTHROUGH: 'BOT_VISIBLE',
      BOT_VISIBLE: 'yes',
    });
    servers.push(s);
    // The workers are the children running src/workers/child/main (tsx's esbuild service is another child).
    const [worker] = await waitFor('a worker process', () => {
      const pids = childPids(s.pid).filter((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('workers/child/main'));
      return pids.length > 0 ? pids : undefined;
    });
    const env = environ(worker!);
    const all = Object.values(env).join('\n');
    for (const [name, value] of Object.entries(SECRETS)) {
      expect(env[name]).toBeUndefined();
      expect(all.includes(value) ? name : undefined).toBeUndefined();
    }
    // Nothing of the service's configuration either, only the minimal set and the pass-through.
    const server = environ(s.pid);
    expect(server.DASHBOARD_TOKEN).toBe(SECRETS.DASHBOARD_TOKEN);
    // (fork's own NODE_CHANNEL_* variables carry the IPC channel.)
    for (const k of Object.keys(env).filter((n) => !n.startsWith('NODE_CHANNEL_')))
      expect(k in workerEnv({ ...server, [k]: env[k] }) ? k : `unexpected ${k}`).toBe(k);
    expect(env.BOT_VISIBLE).toBe('yes');
    expect(env.PATH).toBe(server.PATH);

    // The worker works: a real call through the embedded emulator reaches the bot.
    const placed = await postJson<{ id: string }>(
      `${s.emulator}/_emulator/calls`,
      { to: NUMBER },
      { authorization: `Bearer ${SECRETS.EMULATOR_API_KEY}` },
    );
    expect(placed.status).toBe(200);
    await waitFor(
      'the bot to talk to the caller',
      async () => {
        const c = (
          await getJson<{
            state: string;
            transcript: Array<{ who: string; text: string }>;
          }>(`${s.emulator}/_emulator/calls/${placed.body.id}`, {
            headers: { authorization: `Bearer ${SECRETS.EMULATOR_API_KEY}` },
          })
        ).body;
        return c.state === 'connected' && c.transcript.some((t) => t.who === 'bot') ? c : undefined;
      },
      30_000,
    );
  });
});
