/**
 * Packaging. Docker cannot build here, so: the Dockerfile's required parts are checked as text,
 * its HEALTHCHECK command is run for real against a live app, and the compiled build it ships
 * (tsc → JS, assets copied) is started with plain `node` and takes a call on compiled workers
 * and a compiled bot.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';
import { childPids, getJson, isAlive, postJson, ROOT, startServerProcess, waitFor, type ServerProcess } from '../helpers/ops.js';
import { startStack } from '../helpers/stack.js';

const run = promisify(execFile);
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
/** Instructions with their continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const instr = (name: string) => instructions.filter((l) => l.toUpperCase().startsWith(`${name} `));

describe('Dockerfile', () => {
  test('multi-stage on Node 22 bookworm-slim, chromium + espeak-ng, npm ci + build + prune, non-root, signals, compiled entry', () => {
    const arg = instr('ARG').find((l) => l.startsWith('ARG NODE_IMAGE='));
    expect(arg).toBe('ARG NODE_IMAGE=node:22-bookworm-slim');
    const froms = instr('FROM');
    expect(froms).toEqual(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE} AS runtime']);
    const runs = instr('RUN').join('\n');
    expect(runs).toMatch(/apt-get install -y --no-install-recommends [^\n]*\bchromium\b[^\n]*\bespeak-ng\b/);
    expect(runs).toMatch(/\bnpm ci\b/);
    expect(runs).toMatch(/\bnpm run build\b/);
    expect(runs).toMatch(/\bnpm prune --omit=dev\b/);
    const user = instr('USER').at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER (root|0)(:|$)/);
    expect(instr('STOPSIGNAL')).toEqual(['STOPSIGNAL SIGTERM']);
    expect(instr('CMD').at(-1)).toBe('CMD ["node", "dist/src/app/main.js"]');
    expect(instr('HEALTHCHECK')).toHaveLength(1);
    expect(instr('HEALTHCHECK')[0]).toContain('/health/live');
    // Everything the build stage copies exists and is not excluded from the context.
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const copy of instr('COPY').filter((l) => !l.includes('--from='))) {
      const parts = copy.split(/\s+/).slice(1, -1);
      for (const src of parts) {
        expect(existsSync(path.join(ROOT, src)), src).toBe(true);
        expect(ignored, src).not.toContain(src);
      }
    }
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.env', '.git']));
  });

  test('the HEALTHCHECK command passes against a live app and fails when nothing answers', async () => {
    const hc = instr('HEALTHCHECK')[0]!;
    const cmd = JSON.parse(hc.slice(hc.indexOf('CMD ') + 4)) as string[];
    expect(cmd[0]).toBe('node');
    const stack = await startStack({ env: { IDLE_WORKERS: '0' } });
    const port = new URL(stack.url).port;
    try {
      const ok = await run(process.execPath, cmd.slice(1), { env: { PORT: port } }).then(
        () => 0,
        (e: { code: number }) => e.code,
      );
      expect(ok).toBe(0);
    } finally {
      await stack.close();
    }
    // The same port, now closed.
    const down = await run(process.execPath, cmd.slice(1), { env: { PORT: port } }).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
    expect(down).toBe(1);
  });
});

describe('compiled build (what the image runs)', () => {
  // A package root like the image's /app: package.json (its `exports` resolve the bots' imports of
  // 'patchbay/sdk' to this build) and dist/.
  const pkgDir = path.join(ROOT, 'test-output', `build-${process.pid}`);
  const outDir = path.join(pkgDir, 'dist');
  let server: ServerProcess | undefined;
  afterAll(async () => {
    await server?.kill();
    rmSync(pkgDir, { recursive: true, force: true });
  });

  test(
    'tsc + copy-assets, then `node <out>/src/app/main.js` answers /health/live and completes a call on compiled workers',
    { timeout: 240_000 },
    async () => {
      // The same two steps as `npm run build`, into a private directory (others may be building dist/).
      // Emit only (--noCheck): type errors are the typecheck step's business, and it saves CPU here.
      await run(
        process.execPath,
        [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir, '--noCheck'],
        { cwd: ROOT },
      );
      await run(process.execPath, [path.join(ROOT, 'scripts/copy-assets.mjs'), outDir], { cwd: ROOT });
      copyFileSync(path.join(ROOT, 'package.json'), path.join(pkgDir, 'package.json'));
      // The example bots import the SDK as a bot author's would: through the package's exports.
      expect(readFileSync(path.join(outDir, 'bots/default.js'), 'utf8')).toContain("from 'patchbay/sdk'");
      for (const f of ['src/app/main.js', 'src/workers/child/main.js', 'bots/default.js'])
        expect(existsSync(path.join(outDir, f)), f).toBe(true);
      if (existsSync(path.join(ROOT, 'bots/routes.json'))) expect(existsSync(path.join(outDir, 'bots/routes.json'))).toBe(true);

      server = await startServerProcess(
        { IDLE_WORKERS: '1', CALL_RECORDS_PATH: ':memory:', NODE_ENV: 'production' },
        { entry: path.join(outDir, 'src/app/main.js'), tsx: false, startTimeoutMs: 60_000 },
      );
      expect((await getJson(`${server.url}/health/live`)).status).toBe(200);
      await waitFor(
        'a warm worker',
        async () => (await getJson<{ workers: { idle: number } }>(`${server!.url}/status`)).body.workers.idle === 1,
        60_000,
      );

      // Workers are the compiled entry under plain node (no tsx loader).
      const workers = childPids(server.pid);
      expect(workers.length).toBeGreaterThanOrEqual(1);
      for (const pid of workers) {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        expect(cmdline).toContain(path.join(outDir, 'src/workers/child/main.js'));
        expect(cmdline.join(' ')).not.toContain('tsx');
      }

      const numbers = server.lines.find((l) => Array.isArray(l.numbers))?.numbers as string[] | undefined;
      const number = numbers?.[0] ?? '+15550001000';
      const placed = await postJson<{ id: string }>(`${server.emulator}/_emulator/calls`, {
        to: number,
        script: [{ waitFor: 'connected' }, { waitFor: 'say', match: 'pound', timeoutMs: 20_000 }, { press: '#' }],
      });
      expect(placed.status).toBe(200);
      const line = await server.waitLine((l) => l.msg === 'call ended', 60_000);
      expect(line).toMatchObject({ outcome: 'completed', warmStart: true });
      expect(typeof line.bot).toBe('string');
      const call = (
        await getJson<{ transcript: Array<{ who: string; text: string }> }>(`${server.emulator}/_emulator/calls/${placed.body.id}`)
      ).body;
      expect(call.transcript.some((t) => t.who === 'bot')).toBe(true);

      server.proc.kill('SIGTERM');
      expect(await server.exited).toEqual({ code: 0, signal: null });
      await waitFor('workers gone', () => workers.every((p) => !isAlive(p)), 10_000);
    },
  );
});
