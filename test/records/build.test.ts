/**
 * The SQLite writer thread from the compiled build: tsc emits src/records/sqlite-writer.js next to
 * sqlite.js, and under plain node (no tsx) the store starts that file as its worker thread and
 * writes through it. (From sources, every other records test runs it through tsx.)
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const out = path.join(ROOT, 'test-output', `records-build-${process.pid}`);
const run = promisify(execFile);
afterAll(() => rmSync(out, { recursive: true, force: true }));

it('compiled: the writer thread is sqlite-writer.js, run by plain node, and writes the records', { timeout: 180_000 }, async () => {
  mkdirSync(out, { recursive: true });
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  // The options of tsconfig.json, on the records modules only (the full build is tested in ops-packaging).
  await run(
    process.execPath,
    [
      tsc,
      'src/records/open.ts',
      'src/records/sqlite-writer.ts',
      '--outDir',
      out,
      '--rootDir',
      '.',
      '--module',
      'NodeNext',
      '--moduleResolution',
      'NodeNext',
      '--target',
      'ES2022',
      '--esModuleInterop',
      '--skipLibCheck',
      '--types',
      'node',
      '--noCheck',
      '--resolveJsonModule',
    ],
    { cwd: ROOT },
  );
  expect(existsSync(path.join(out, 'src/records/sqlite-writer.js'))).toBe(true);
  const db = path.join(out, 'calls.db');
  const script = path.join(out, 'run.mjs');
  writeFileSync(
    script,
    `import { openRecordStore } from './src/records/open.js';
import { createLogger } from './src/core/logger.js';
const store = await openRecordStore({ path: ${JSON.stringify(db)}, storePii: false, logger: createLogger({ level: 'silent' }), replicaId: 'built' });
const thread = store.backend.writerThread;
const threadId = thread?.threadId;
store.open({ id: 'b1', callId: 'c', callDomain: 'd', from: '+15551234567', to: '+15550001000', bot: 'default', roomName: 'r', state: 'queued', timeline: { received: Date.now() } });
store.close({ id: 'b1', callId: 'c', callDomain: 'd', from: '+15551234567', to: '+15550001000', bot: 'default', roomName: 'r', state: 'ended', outcome: 'completed', timeline: {} });
await store.flush();
const still = store.backend.writerThread === thread;
const row = await store.get('b1');
await store.shutdown();
console.log(JSON.stringify({ thread: thread !== undefined, threadId, still, outcome: row?.outcome, stats: store.stats() }));
`,
  );
  const { stdout } = await run(process.execPath, [script], { cwd: out });
  const r = JSON.parse(stdout.trim()) as {
    thread: boolean;
    threadId: number;
    still: boolean;
    outcome: string;
    stats: { written: number; writeFailures: number };
  };
  expect(r).toMatchObject({ thread: true, still: true, outcome: 'completed' });
  expect(r.threadId).toBeGreaterThan(0);
  expect(r.stats.writeFailures).toBe(0);
  expect(r.stats.written).toBeGreaterThanOrEqual(1);
});
