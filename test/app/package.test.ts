/**
 * The package as a bot author gets it: built and packed (`npm pack`, the files package.json lists),
 * installed into a project of its own (node_modules holds the tarball's contents as `patchbay`, and
 * links to this repository's installed dependencies in place of a registry), with one TypeScript
 * bot that imports 'patchbay/sdk' and one `runBotTest` test. The project is type-checked with tsc
 * against the package's declarations, its test runs with `node --test`, the installed CLI's
 * `patchbay start --bots … --routes …` answers a call with the project's bot, and
 * 'patchbay/emulator' starts an emulator in-process.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ROOT } from '../helpers/ops.js';

const run = promisify(execFile);
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

interface Pkg {
  name: string;
  files: string[];
  bin: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
}
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Pkg;

/** A clean environment: nothing from the developer's shell (DAILY_API_KEY!) leaks in. */
const cleanEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/tmp',
  ...extra,
});

const BOT = `import { defineBot, type Call } from 'patchbay/sdk';

async function greet(call: Call): Promise<void> {
  await call.say(\`Hello from my own repository. You called \${call.to}. Press a key.\`);
  const key: string = await call.collectDigits({ maxDigits: 1, firstDigitTimeoutMs: 10_000 });
  await call.say(\`You pressed \${key || 'nothing'}. Goodbye.\`);
  await call.hangup('done');
}

export default defineBot({ name: 'hello', onCall: greet });

// @ts-expect-error a bot needs onCall: unused (so tsc fails) if the SDK's types are missing or any
export const broken = () => defineBot({ name: 'broken' });
`;

const TEST = `import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runBotTest, type BotTestResult } from 'patchbay/testing';
import hello from '../bots/hello.js';

test('hello greets and echoes the key', async () => {
  const r: BotTestResult = await runBotTest(hello, {
    caller: [{ waitFor: 'say', match: /press a key/i }, { press: '7' }, { waitFor: 'say', match: /goodbye/i }],
  });
  assert.equal(r.outcome, 'completed', r.detail);
  assert.deepEqual(r.digits, ['7']);
  assert.match(r.said.join(' '), /You pressed 7/);
});

// @ts-expect-error outcomes are a closed union: unused (so tsc fails) if the harness's types are missing
export const notAnOutcome: BotTestResult['outcome'] = 'no-such-outcome';
`;

const EMULATOR = `import { createEmulator, type Emulator } from 'patchbay/emulator';

const emulator: Emulator = await createEmulator({ host: '127.0.0.1', port: 0, apiKey: 'test_packaged_key' });
const res = await fetch(\`\${emulator.apiUrl}/rooms\`, { headers: { authorization: 'Bearer test_packaged_key' } });
console.log(JSON.stringify({ origin: emulator.origin, status: res.status }));
await emulator.close();
`;

describe('the packed package in a project of its own', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'patchbay-pkg-'));
  const stage = path.join(tmp, 'stage');
  const proj = path.join(tmp, 'my-bots');
  let tarFiles: string[] = [];
  let server: ChildProcess | undefined;

  beforeAll(async () => {
    // 1. What `npm pack` packs (prepack = the build), staged so as not to touch this checkout's dist/:
    //    the files package.json lists, with dist/ built fresh.
    mkdirSync(stage, { recursive: true });
    cpSync(path.join(ROOT, 'package.json'), path.join(stage, 'package.json'));
    for (const f of pkg.files.filter((f) => !f.startsWith('dist'))) {
      if (existsSync(path.join(ROOT, f))) cpSync(path.join(ROOT, f), path.join(stage, f), { recursive: true });
    }
    // Emit only (--noCheck): type errors are the typecheck step's business; declarations included.
    await run(process.execPath, [TSC, '-p', 'tsconfig.build.json', '--outDir', path.join(stage, 'dist'), '--noCheck'], { cwd: ROOT });
    await run(process.execPath, [path.join(ROOT, 'scripts/copy-assets.mjs'), path.join(stage, 'dist')], { cwd: ROOT });
    const packed = await run('npm', ['pack', '--ignore-scripts', '--offline', '--json', '--pack-destination', tmp], {
      cwd: stage,
      env: cleanEnv(),
    });
    const info = (JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!;
    tarFiles = info.files.map((f) => f.path);

    // 2. Installed: node_modules/patchbay is the tarball; its dependencies are this repository's.
    const nm = path.join(proj, 'node_modules');
    mkdirSync(path.join(nm, 'patchbay'), { recursive: true });
    mkdirSync(path.join(nm, '.bin'));
    const deps = realpathSync(path.join(ROOT, 'node_modules'));
    for (const entry of readdirSync(deps)) {
      if (entry.startsWith('.') || entry === 'patchbay') continue;
      symlinkSync(path.join(deps, entry), path.join(nm, entry));
    }
    await run('tar', ['-xzf', path.join(tmp, info.filename), '-C', path.join(nm, 'patchbay'), '--strip-components=1']);
    for (const [name, file] of Object.entries(pkg.bin)) symlinkSync(path.join('..', 'patchbay', file), path.join(nm, '.bin', name));

    // 3. The bot author's project.
    mkdirSync(path.join(proj, 'bots'));
    mkdirSync(path.join(proj, 'test'));
    writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'my-bots', private: true, type: 'module' }, null, 2));
    writeFileSync(
      path.join(proj, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        include: ['bots', 'test', 'scripts'],
      }),
    );
    writeFileSync(path.join(proj, 'bots/hello.ts'), BOT);
    writeFileSync(
      path.join(proj, 'bots/routes.json'),
      JSON.stringify({ default: 'hello', routes: [{ to: '+15550001000', bot: 'hello' }] }),
    );
    writeFileSync(path.join(proj, 'test/hello.test.ts'), TEST);
    mkdirSync(path.join(proj, 'scripts'));
    writeFileSync(path.join(proj, 'scripts/emulator.ts'), EMULATOR);
  }, 300_000);

  afterAll(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL');
      await new Promise((r) => server!.once('exit', r));
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the tarball holds every export with its declarations, the CLI, README and LICENSE; no sources or tests', () => {
    for (const [sub, target] of Object.entries(pkg.exports)) {
      const targets = typeof target === 'string' ? [target] : [target.types, target.default];
      for (const t of targets) expect(tarFiles, `${sub} → ${t}`).toContain(t.replace(/^\.\//, ''));
    }
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(['./sdk', './testing', './emulator']));
    for (const file of Object.values(pkg.bin)) expect(tarFiles).toContain(file);
    expect(tarFiles).toEqual(
      expect.arrayContaining(['README.md', 'LICENSE', 'package.json', 'dist/src/app/main.js', 'dist/src/workers/child/main.js']),
    );
    expect(tarFiles.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
    expect(tarFiles.filter((f) => f.startsWith('test/') || f.startsWith('src/') || f.includes('node_modules'))).toEqual([]);
  });

  test('the project type-checks against the installed declarations (tsc)', { timeout: 120_000 }, async () => {
    const r = await run(process.execPath, [TSC, '-p', proj], { cwd: proj }).then(
      () => ({ code: 0, out: '' }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  });

  test("the project's runBotTest test passes (node --test, TypeScript through tsx)", { timeout: 120_000 }, async () => {
    const r = await run(process.execPath, ['--import', 'tsx', '--test', 'test/hello.test.ts'], {
      cwd: proj,
      env: cleanEnv(),
      timeout: 110_000,
    }).then(
      (o) => ({ code: 0, out: o.stdout }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: `${e.stdout}\n${e.stderr}` }),
    );
    expect(r.out).toMatch(/^# pass 1$/m);
    expect(r.code).toBe(0);
  });

  test("'patchbay/emulator' starts the emulator in-process", { timeout: 60_000 }, async () => {
    const r = await run(process.execPath, ['--import', 'tsx', 'scripts/emulator.ts'], { cwd: proj, env: cleanEnv(), timeout: 50_000 });
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { origin: string; status: number };
    expect(out.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(out.status).toBe(200);
  });

  test(
    '`patchbay start --bots ./bots --routes ./bots/routes.json` answers a call with the TypeScript bot',
    { timeout: 120_000 },
    async () => {
      const proc = spawn(
        process.execPath,
        [path.join(proj, 'node_modules/.bin/patchbay'), 'start', '--bots', './bots', '--routes', './bots/routes.json', '--port', '0'],
        {
          cwd: proj,
          env: cleanEnv({ HOST: '127.0.0.1', EMULATOR_PORT: '0', CALL_RECORDS_PATH: ':memory:', IDLE_WORKERS: '1', LOG_LEVEL: 'info' }),
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      server = proc;
      const lines: Array<Record<string, unknown>> = [];
      let stderr = '';
      let buf = '';
      proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const waitLine = (pred: (l: Record<string, unknown>) => boolean, what: string, timeoutMs: number) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const check = () => {
            const hit = lines.find(pred);
            if (hit) {
              clearTimeout(timer);
              proc.stdout.off('data', check);
              resolve(hit);
            }
          };
          const timer = setTimeout(() => {
            proc.stdout.off('data', check);
            reject(new Error(`no "${what}" log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`));
          }, timeoutMs);
          proc.stdout.on('data', check);
          check();
        });
      proc.stdout.setEncoding('utf8').on('data', (c: string) => {
        buf += c;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          try {
            lines.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            lines.push({ msg: line });
          }
        }
      });

      const routes = await waitLine((l) => l.msg === 'bot routes loaded', 'bot routes loaded', 60_000);
      expect(routes).toMatchObject({ routesFile: path.join(proj, 'bots/routes.json'), bots: ['hello'] });
      const emulator = (await waitLine((l) => l.msg === 'emulator listening', 'emulator listening', 60_000)).origin as string;
      await waitLine((l) => l.msg === 'patchbay listening', 'patchbay listening', 60_000);

      const placed = await fetch(`${emulator}/_emulator/calls`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          to: '+15550001000',
          script: [{ waitFor: 'connected' }, { waitFor: 'say', match: 'press a key', timeoutMs: 30_000 }, { press: '3' }],
        }),
      });
      expect(placed.status).toBe(200);
      const ended = await waitLine((l) => l.msg === 'call ended', 'call ended', 90_000);
      expect(ended).toMatchObject({ bot: 'hello', outcome: 'completed', detail: 'done' });

      proc.kill('SIGTERM');
      const exit = await new Promise<number | null>((r) =>
        proc.exitCode !== null ? r(proc.exitCode) : proc.once('exit', (code) => r(code)),
      );
      expect(exit).toBe(0);
    },
  );
});
