/**
 * Fleet mode is loaded only with REDIS_URL (issue 20): the real service started without it, taking
 * a real call through its embedded emulator, loads no file of src/fleet/ and not ioredis. The
 * module list comes from Node's own module hooks (test/fixtures/module-log) in the main process,
 * where fleet mode lives, so it is what the process really loaded.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { FIXTURE_BOTS, getJson, postJson, ROOT, startServerProcess, waitFor, type ServerProcess } from '../helpers/ops.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'patchbay-modules-'));
const servers: ServerProcess[] = [];
afterAll(async () => {
  for (const s of servers) await s.kill();
  rmSync(dir, { recursive: true, force: true });
});

it(
  'a start without REDIS_URL that takes a call loads no module of src/fleet/ and not ioredis (nor the LLM library, nor a speech-to-text SDK)',
  { timeout: 60_000 },
  async () => {
    const log = path.join(dir, 'modules.txt');
    const key = `emu_${randomBytes(8).toString('hex')}`;
    const number = '+15550003177';
    const s = await startServerProcess(
      {
        MODULE_LOG: log,
        EMULATOR_API_KEY: key,
        EMULATOR_NUMBERS: number,
        BOTS_DIR: FIXTURE_BOTS,
        DEFAULT_BOT: 'linger',
        // A speech-to-text vendor configured: its SDK is for the workers, never the main process.
        STT_PROVIDER: 'deepgram',
        DEEPGRAM_API_KEY: 'dg_module_graph',
        DEEPGRAM_BASE_URL: 'http://127.0.0.1:9',
      },
      { nodeArgs: ['--import', fileURLToPath(new URL('../fixtures/module-log/register.mjs', import.meta.url))] },
    );
    servers.push(s);
    const placed = await postJson<{ id: string }>(`${s.emulator}/_emulator/calls`, { to: number }, { authorization: `Bearer ${key}` });
    expect(placed.status).toBe(200);
    await waitFor('the call to be connected', async () => {
      const c = (
        await getJson<{ state: string }>(`${s.emulator}/_emulator/calls/${placed.body.id}`, { headers: { authorization: `Bearer ${key}` } })
      ).body;
      return c.state === 'connected' ? c : undefined;
    });
    const loaded = readFileSync(log, 'utf8')
      .split('\n')
      .filter((u) => u.startsWith('file://'))
      .map((u) => path.relative(ROOT, fileURLToPath(u)));
    // The hooks see the service's own modules (the control proves the list is real)…
    expect(loaded).toContain(path.join('src', 'admission', 'dispatcher.ts'));
    expect(loaded).toContain(path.join('src', 'daily', 'rate-limit.ts'));
    // …and none of fleet mode, nor the LLM library or a speech vendor's SDK (loaded by a worker, and only when configured).
    const vendors = ['@deepgram', 'openai', '@elevenlabs', '@cartesia', 'assemblyai'].map((p) => `node_modules${path.sep}${p}${path.sep}`);
    const unwanted = [
      `${path.sep}ioredis${path.sep}`,
      `${path.sep}node_modules${path.sep}ai${path.sep}`,
      `${path.sep}@ai-sdk${path.sep}`,
      ...vendors,
      path.join('src', 'voice', 'stt-deepgram.ts'),
    ];
    expect(loaded.filter((f) => f.startsWith(path.join('src', 'fleet')) || unwanted.some((u) => f.includes(u)))).toEqual([]);
  },
);
