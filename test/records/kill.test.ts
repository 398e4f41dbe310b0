/**
 * A replica SIGKILLed mid-call (the real service, src/app/main.ts, with its embedded
 * emulator and workers): the call's record was written while it was live, and the next start-up
 * of that replica closes it once, as `interrupted` — with a SQLite file and with PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres.js';
import { childPids, getJson, postJson, startServerProcess, type ServerProcess } from '../helpers/ops.js';

type Call = {
  id: string;
  callId: string;
  outcome: string | null;
  endedAtMs: number | null;
  replicaId: string;
  events: Array<{ kind: string; value: string }>;
};
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-records-kill-'));
let pg: PgServer;
const servers: ServerProcess[] = [];
beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  for (const s of servers) await s.kill();
  await pg?.remove();
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each(['sqlite', 'postgres'] as const)('a replica SIGKILLed mid-call (%s)', (kind) => {
  it('keeps the live record, and its next start-up closes it once as interrupted', async () => {
    const env: Record<string, string> = { IDLE_WORKERS: '1', REPLICA_ID: `kill${kind}` };
    if (kind === 'sqlite') env.CALL_RECORDS_PATH = path.join(dir, 'calls.db');
    else env.DATABASE_URL = await pg.createDatabase('records_kill');
    const first = await startServerProcess(env, { startTimeoutMs: 60_000 });
    servers.push(first);
    const placed = await postJson<{ id: string; callId?: string }>(`${first.emulator}/_emulator/calls`, {
      to: '+15550001000',
      from: '+15557654321',
      script: [{ waitFor: 'say', match: 'Hello' }, { wait: 120_000 }],
    });
    expect(placed.status).toBe(200);
    const live = await until('the live record with its greeting', async () => {
      const r = await getJson<{ calls: Call[] }>(`${first.url}/calls`);
      const c = r.body.calls[0];
      return c && c.endedAtMs === null && c.events.some((e) => e.kind === 'say') ? c : undefined;
    });
    // Changes are written within a batch window (25 ms): give the greeting's entry time to land.
    await new Promise((r) => setTimeout(r, 500));
    // The whole replica dies, workers too (a container killed). A worker that outlives its service
    // finishes its call instead (issue 21, item 5: test/app/restart.test.ts).
    const workers = childPids(first.pid);
    first.proc.kill('SIGKILL');
    for (const pid of workers) process.kill(pid, 'SIGKILL');
    await first.exited;

    const second = await startServerProcess(env, { startTimeoutMs: 60_000 });
    servers.push(second);
    const { body } = await getJson<{ calls: Call[] }>(`${second.url}/calls`);
    const mine = body.calls.filter((c) => c.id === live.id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ outcome: 'interrupted', replicaId: `kill${kind}`, callId: live.callId });
    expect(mine[0]!.endedAtMs).toEqual(expect.any(Number));
    expect(mine[0]!.events.some((e) => e.kind === 'say')).toBe(true);
    const line = await second.waitLine((l) => l.msg === 'call records: closed calls left open', 5_000);
    expect(line).toMatchObject({ records: 1, outcome: 'interrupted' });
    await second.kill();

    // Once: a third start finds nothing left open.
    const third = await startServerProcess(env, { startTimeoutMs: 60_000 });
    servers.push(third);
    expect(third.lines.some((l) => l.msg === 'call records: closed calls left open')).toBe(false);
    const again = await getJson<{ calls: Call[] }>(`${third.url}/calls?outcome=interrupted`);
    expect(again.body.calls.map((c) => c.id)).toEqual([live.id]);
    await third.kill();
  }, 180_000);
});
