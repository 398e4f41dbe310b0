/**
 * Call records: real calls through the real emulator, app and workers are stored in a SQLite file,
 * survive a restart, and are queried through GET /calls. Bad files stop start-up with a clear error.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import type { CallRecord } from '../../src/admission/dispatcher.js';
import { createLogger } from '../../src/core/logger.js';
import { openRecordStore } from '../../src/records/open.js';
import type { SqliteBackend } from '../../src/records/sqlite.js';
import { RecordsError, type RecordStore } from '../../src/records/store.js';
import { createRuntime } from '../../src/app/runtime.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const CALLER = '+15557654321';
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-records-'));
const dbPath = path.join(dir, 'nested', 'calls.db');
const silent = createLogger({ level: 'silent' });

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.json() };
}

/** A real call: the caller waits for the bot's greeting, then hangs up. */
async function placeCall(stack: Stack, from = CALLER): Promise<CallRecord> {
  const call = stack.emulator.placeCall({ to: NUMBER, from, script: [{ waitFor: 'say', match: 'Hello' }, { hangup: true }] });
  await call.ended;
  return stack.waitEnded(call.callId);
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const openStore = (p: string, storePii = false) => openRecordStore({ path: p, storePii, logger: silent, replicaId: 'records-test' });
/** An ended call as the dispatcher hands it over (the store, not the calls, is under test). */
const save = (store: RecordStore, r: Omit<CallRecord, 'outcome'> & { outcome: NonNullable<CallRecord['outcome']> }) =>
  store.close({ ...r, events: r.botEvents });

describe('call records across a restart', () => {
  let first: CallRecord;

  it('stores a real call in the file and answers it on GET /calls', async () => {
    const stack = await startStack({ env: { CALL_RECORDS_PATH: dbPath } });
    try {
      first = await placeCall(stack);
      expect(first.outcome).toBe('caller_hangup');
      const { status, body } = await getJson(`${stack.url}/calls`);
      expect(status).toBe(200);
      expect(body.calls).toHaveLength(1);
      const c = body.calls[0];
      expect(c).toMatchObject({
        id: first.id,
        callId: first.callId,
        bot: 'default',
        outcome: 'caller_hangup',
        from: '********4321',
        to: '********1000',
      });
      expect(c.timeline.received).toBe(first.timeline.received);
      expect(c.timeline.connected).toBeGreaterThanOrEqual(c.timeline.received);
      expect(c.durationMs).toBe(first.timeline.ended! - first.timeline.received!);
      expect(c.events.some((e: { kind: string; value: string }) => e.kind === 'say' && /Hello/.test(e.value))).toBe(true);
    } finally {
      await stack.close();
    }
    // The file itself holds masked numbers only.
    const raw = readFileSync(dbPath);
    expect(raw.includes(Buffer.from(CALLER))).toBe(false);
  });

  it('reads them back after a restart, and adds new ones after them', async () => {
    const stack = await startStack({ env: { CALL_RECORDS_PATH: dbPath } });
    try {
      const before = await getJson(`${stack.url}/calls`);
      expect(before.body.calls.map((c: { id: string }) => c.id)).toEqual([first.id]);
      const second = await placeCall(stack, '+15550009999');
      const after = await getJson(`${stack.url}/calls?limit=10`);
      expect(after.body.calls.map((c: { id: string }) => c.id)).toEqual([second.id, first.id]);
      expect(after.body.calls[0].seq).toBeGreaterThan(after.body.calls[1].seq);
    } finally {
      await stack.close();
    }
    const store = await openStore(dbPath);
    try {
      expect(await store.count()).toBe(2);
    } finally {
      await store.shutdown();
    }
  });
});

describe('GET /calls queries', () => {
  let stack: Stack;
  const ids: string[] = [];
  const outcomes = ['completed', 'caller_hangup', 'completed', 'bot_error', 'completed', 'queue_timeout', 'completed'] as const;

  beforeAll(async () => {
    stack = await startStack({ env: { CALL_RECORDS_PATH: ':memory:', DASHBOARD_TOKEN: 'records-test-token-123456' } });
    // Records as the dispatcher emits them (the store is what is under test here, not the calls).
    const t0 = Date.now() - 60_000;
    outcomes.forEach((outcome, i) => {
      const id = `rec-${i}`;
      ids.push(id);
      save(stack.rt.records!, {
        id,
        callId: `call-${i}`,
        callDomain: 'dom',
        from: `+1555000${String(i).padStart(4, '0')}`,
        to: NUMBER,
        sipHeaders: {},
        bot: 'default',
        roomName: `room-${i}`,
        roomUrl: '',
        state: 'ended',
        timeline: { received: t0 + i * 1000, ended: t0 + i * 1000 + 500 },
        outcome,
        botEvents:
          i === 6
            ? [
                { kind: 'say', value: 'Please enter your PIN.', atMs: t0 },
                { kind: 'digits', value: '1234', atMs: t0 },
                { kind: 'transcript', value: 'my card number is', atMs: t0 },
                { kind: 'transfer', value: '+15551112222', atMs: t0 },
              ]
            : [],
      });
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const auth = { authorization: 'Bearer records-test-token-123456' };

  it('needs the dashboard token when one is set', async () => {
    const res = await fetch(`${stack.url}/calls`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe('unauthorized');
    expect((await getJson(`${stack.url}/calls?token=wrong-token-wrong-token`)).status).toBe(401);
    expect((await getJson(`${stack.url}/calls?token=records-test-token-123456`)).status).toBe(200);
  });

  it('returns newest first, limited, filtered by outcome, and pages with before', async () => {
    const all = await getJson(`${stack.url}/calls`, auth);
    expect(all.body.calls.map((c: { id: string }) => c.id)).toEqual([...ids].reverse());
    expect(all.body.nextBefore).toBeNull();

    const page1 = await getJson(`${stack.url}/calls?limit=3`, auth);
    expect(page1.body.calls.map((c: { id: string }) => c.id)).toEqual(['rec-6', 'rec-5', 'rec-4']);
    expect(page1.body.nextBefore).toBe(page1.body.calls[2].seq);
    const page2 = await getJson(`${stack.url}/calls?limit=3&before=${page1.body.nextBefore}`, auth);
    expect(page2.body.calls.map((c: { id: string }) => c.id)).toEqual(['rec-3', 'rec-2', 'rec-1']);
    const page3 = await getJson(`${stack.url}/calls?limit=3&before=${page2.body.nextBefore}`, auth);
    expect(page3.body.calls.map((c: { id: string }) => c.id)).toEqual(['rec-0']);
    expect(page3.body.nextBefore).toBeNull();

    const completed = await getJson(`${stack.url}/calls?outcome=completed&limit=2`, auth);
    expect(completed.body.calls.map((c: { id: string }) => c.id)).toEqual(['rec-6', 'rec-4']);
    const rest = await getJson(`${stack.url}/calls?outcome=completed&before=${completed.body.nextBefore}`, auth);
    expect(rest.body.calls.map((c: { id: string }) => c.id)).toEqual(['rec-2', 'rec-0']);
    const none = await getJson(`${stack.url}/calls?outcome=worker_memory`, auth);
    expect(none.body.calls).toEqual([]);
    // Shown numbers are masked.
    expect(all.body.calls[0].from).toBe('********0006');
    expect(all.body.calls[0].timeline).toEqual({ received: expect.any(Number), ended: expect.any(Number) });
    expect(all.body.calls[0].durationMs).toBe(500);
    // DTMF digits and transcripts are not kept by default, numbers are masked; what the bot said is kept.
    expect(all.body.calls[0].events.map((e: { value: string }) => e.value)).toEqual([
      'Please enter your PIN.',
      '[not stored]',
      '[not stored]',
      '********2222',
    ]);
  });

  it('keeps numbers, digits and transcripts in the file with CALL_RECORDS_STORE_PII=true, still masked when shown', async () => {
    const p = path.join(dir, 'pii.db');
    const pii = await startStack({ env: { CALL_RECORDS_PATH: p, CALL_RECORDS_STORE_PII: 'true' } });
    try {
      expect(pii.config.records.storePii).toBe(true);
      save(pii.rt.records!, {
        id: 'pii-1',
        callId: 'pii-call',
        callDomain: 'dom',
        from: CALLER,
        to: NUMBER,
        sipHeaders: {},
        bot: 'default',
        roomName: 'r',
        roomUrl: '',
        state: 'ended',
        timeline: { received: 1, ended: 2 },
        outcome: 'completed',
        botEvents: [{ kind: 'digits', value: '987654', atMs: 1 }],
      });
      const { body } = await getJson(`${pii.url}/calls`);
      expect(body.calls[0].from).toBe('********4321');
      expect(body.calls[0].events[0].value).toBe('987654');
    } finally {
      await pii.close();
    }
    const store = await openStore(p);
    try {
      expect((await store.query({}, { limit: 1 }))[0]!.from).toBe(CALLER);
    } finally {
      await store.shutdown();
    }
  });

  it.each([
    ['limit=0', /limit must be an integer from 1 to 500/],
    ['limit=501', /limit must be an integer from 1 to 500/],
    ['limit=-1', /limit/],
    ['limit=abc', /limit/],
    ['limit=1.5', /limit/],
    ['outcome=nope', /outcome must be one of: completed, /],
    ['before=0', /before must be a positive integer/],
    ['before=x', /before/],
    ['since=5', /unknown query parameter "since"/],
  ])('refuses %s with 400', async (query, message) => {
    const { status, body } = await getJson(`${stack.url}/calls?${query}`, auth);
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_query');
    expect(body.message).toMatch(message);
  });

  it('answers 404 when records are off', async () => {
    // (The admitted log would default to ./data with records off: kept in memory in this test.)
    const off = await startStack({ env: { CALL_RECORDS_PATH: 'off', ADMITTED_LOG_PATH: 'off' } });
    try {
      expect(off.rt.records).toBeUndefined();
      const { status, body } = await getJson(`${off.url}/calls`);
      expect(status).toBe(404);
      expect(body.error).toBe('records_off');
    } finally {
      await off.close();
    }
  });
});

describe('a write that fails is kept and retried', () => {
  it('keeps a record while another connection (another replica) holds the write lock, and writes it once the lock is gone', async () => {
    const p = path.join(dir, 'locked.db');
    const store = await openStore(p);
    const other = new Database(p, { timeout: 0 });
    try {
      other.exec('BEGIN IMMEDIATE'); // what another replica writing to the same file would hold
      save(store, {
        id: 'locked-1',
        callId: 'locked-call',
        callDomain: 'd',
        from: CALLER,
        to: NUMBER,
        sipHeaders: {},
        bot: 'default',
        roomName: 'r',
        roomUrl: '',
        state: 'ended',
        timeline: { received: 1, ended: 2 },
        outcome: 'completed',
        botEvents: [],
      });
      // The writer thread waits its busy timeout (2 s), then gives the batch back.
      await store.flush();
      expect(store.stats().writeFailures).toBeGreaterThanOrEqual(1);
      expect(store.unwritten).toBe(1);
      expect(await store.count()).toBe(0);
      other.exec('COMMIT');
      // Retried a second later.
      await expect.poll(() => store.unwritten, { timeout: 15_000, interval: 100 }).toBe(0);
      expect((await store.query({}, { limit: 5 })).map((c) => c.id)).toEqual(['locked-1']);
      expect(store.stats().written).toBe(1);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await store.shutdown();
    }
  }, 30_000);
});

describe('the writer thread', () => {
  it('if it dies, nothing saved is lost: writing goes on from the main thread', async () => {
    const p = path.join(dir, 'writer-lost.db');
    const store = await openStore(p);
    const rec = (i: number) => ({
      id: `w-${i}`,
      callId: `w-call-${i}`,
      callDomain: 'd',
      from: CALLER,
      to: NUMBER,
      sipHeaders: {},
      bot: 'default',
      roomName: 'r',
      roomUrl: '',
      state: 'ended' as const,
      timeline: { received: i, ended: i + 1 },
      outcome: 'completed' as const,
      botEvents: [],
    });
    try {
      save(store, rec(1));
      await store.flush();
      expect(store.stats().written).toBe(1);
      // Kill the thread (as an out-of-memory or a native crash in it would), with records on their way.
      const writer = (store.backend as SqliteBackend).writerThread!;
      expect(writer).toBeDefined();
      for (let i = 2; i <= 20; i++) save(store, rec(i));
      await new Promise((r) => setImmediate(r));
      await writer.terminate();
      for (let i = 21; i <= 30; i++) save(store, rec(i));
      await store.flush();
      await expect.poll(() => store.unwritten, { timeout: 10_000, interval: 50 }).toBe(0);
      expect(await store.count()).toBe(30);
    } finally {
      await store.shutdown();
    }
    const again = await openStore(p);
    try {
      expect((await again.query({}, { limit: 500 })).map((c) => c.id).sort()).toEqual(
        Array.from({ length: 30 }, (_, i) => `w-${i + 1}`).sort(),
      );
    } finally {
      await again.shutdown();
    }
  });
});

describe('bad database files stop start-up with a clear error', () => {
  const env = (p: string) =>
    loadConfig({ HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', IDLE_WORKERS: '0', EMULATOR_PORT: '0', CALL_RECORDS_PATH: p });

  async function startError(p: string): Promise<Error> {
    try {
      const rt = await createRuntime(env(p), silent);
      await rt.shutdown(0);
    } catch (err) {
      return err as Error;
    }
    throw new Error(`createRuntime started with CALL_RECORDS_PATH=${p}`);
  }

  it('a file that is not a database', async () => {
    const p = path.join(dir, 'garbage.db');
    const junk = Buffer.alloc(8192, 0x41);
    writeFileSync(p, junk);
    const err = await startError(p);
    expect(err).toBeInstanceOf(RecordsError);
    expect(err.message).toContain(p);
    expect(err.message).toMatch(/not a database/);
    // The file is left as it was.
    expect(readFileSync(p).equals(junk)).toBe(true);
  });

  it('a database with damaged pages', async () => {
    const p = path.join(dir, 'damaged.db');
    const store = await openStore(p);
    for (let i = 0; i < 2000; i++) {
      save(store, {
        id: `d-${i}`,
        callId: `c-${i}`,
        callDomain: 'd',
        from: '+15551230000',
        to: NUMBER,
        sipHeaders: {},
        bot: 'default',
        roomName: 'r',
        roomUrl: '',
        state: 'ended',
        timeline: { received: i, ended: i + 1 },
        outcome: 'completed',
        botEvents: [],
      });
    }
    await store.shutdown();
    const buf = readFileSync(p);
    expect(buf.length).toBeGreaterThan(64 * 1024);
    buf.fill(0x5a, 40_000, 60_000);
    writeFileSync(p, buf);
    const err = await startError(p);
    expect(err).toBeInstanceOf(RecordsError);
    expect(err.message).toContain(p);
    expect(err.message).toMatch(/corrupt/);
  });

  it("another program's database, and one from a newer patchbay, are left untouched", async () => {
    const foreign = path.join(dir, 'foreign.db');
    const other = new Database(foreign);
    other.exec('CREATE TABLE calls (who TEXT, at INTEGER)');
    other.close();
    const newer = path.join(dir, 'newer.db');
    const n = new Database(newer);
    n.pragma('user_version = 99');
    n.close();
    for (const [p, why] of [
      [foreign, /calls table is not patchbay's/],
      [newer, /schema version 99 is newer/],
    ] as const) {
      const before = readFileSync(p);
      const err = await startError(p);
      expect(err).toBeInstanceOf(RecordsError);
      expect(err.message).toContain(p);
      expect(err.message).toMatch(why);
      expect(readFileSync(p).equals(before)).toBe(true);
    }
  });

  it('a path that cannot be created (its parent is a file)', async () => {
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    const p = path.join(file, 'calls.db');
    const err = await startError(p);
    expect(err).toBeInstanceOf(RecordsError);
    expect(err.message).toContain(p);
    expect(err.message).toMatch(/ENOTDIR|not a directory/);
  });

  it('a directory instead of a file', async () => {
    const p = path.join(dir, 'a-dir');
    mkdirSync(p, { recursive: true });
    const err = await startError(p);
    expect(err).toBeInstanceOf(RecordsError);
    expect(err.message).toMatch(/not a regular file/);
  });

  it('the service (src/app/main.ts) exits 1 with one line naming the file', async () => {
    const p = path.join(dir, 'not-a-db.db');
    writeFileSync(p, 'this is not a database, just text '.repeat(200));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CALL_RECORDS_PATH: p,
      PORT: '0',
      EMULATOR_PORT: '0',
      IDLE_WORKERS: '0',
      LOG_LEVEL: 'info',
    };
    delete env.DAILY_API_KEY;
    delete env.DAILY_API_URL;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/app/main.ts'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string; path?: string });
    const fatal = lines.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.path).toBe(p);
    expect(fatal[0]!.msg).toMatch(/^call records: cannot open .*not a database/);
    // Nothing else started: no emulator, no workers, no listening line.
    expect(out).not.toMatch(/emulator|listening/);
  }, 30_000);

  it('a location where nothing can be written', async () => {
    const err = await startError('/proc/patchbay-calls.db');
    expect(err).toBeInstanceOf(RecordsError);
    expect(err.message).toContain('/proc/patchbay-calls.db');
    expect(err.message).toMatch(/unable to open|read-only|EACCES|EROFS|ENOENT/i);
  });
});
