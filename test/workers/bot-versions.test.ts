/**
 * Bot versions in call records (issue 25, item 3), over real calls through the real emulator, app
 * and workers with a bots directory of this test's own: a declared `version` is recorded as is; a
 * bot without one is recorded under the hash of its file and of what it imports from the bots
 * directory, which changes when an imported file changes (and the next call records the new one);
 * a bot that fails to load still gets its version in the record (known to the parent).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { botSourceFiles, botSourceHash } from '../../src/core/bot-files.js';
import { BotVersions } from '../../src/workers/parent/bot-versions.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-versions-'));
const SDK = pathToFileURL(path.resolve('src/sdk/index.ts')).href;
const file = (name: string) => path.join(dir, name);

function writeBots(word: string): void {
  mkdirSync(file('lib'), { recursive: true });
  writeFileSync(file('lib/words.ts'), `export const WORD = ${JSON.stringify(word)};\n`);
  writeFileSync(
    file('declared.ts'),
    `import { defineBot } from ${JSON.stringify(SDK)};
export default defineBot({ name: 'declared', version: '2.1.0', async onCall(call) { call.step('hello'); await call.say('Hi there.'); await call.hangup('done'); } });
`,
  );
  writeFileSync(
    file('hashed.ts'),
    `import { defineBot } from ${JSON.stringify(SDK)};
import { WORD } from './lib/words.js';
export default defineBot({ name: 'hashed', async onCall(call) { await call.say(\`Say \${WORD}.\`); await call.hangup('done'); } });
`,
  );
  writeFileSync(file('broken.js'), `export default {{ this is not javascript\n`);
  writeFileSync(file('unrelated.ts'), `export const NOTHING = 1;\n`);
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bot versions in call records', () => {
  let stack: Stack;
  const BOT_BY_CALLER: Record<string, string> = { '+15550000001': 'declared', '+15550000002': 'hashed', '+15550000003': 'broken' };

  beforeAll(async () => {
    writeBots('hello');
    stack = await startStack({
      env: { BOTS_DIR: dir, DEFAULT_BOT: 'declared', IDLE_WORKERS: '1' },
      runtime: { route: (c) => BOT_BY_CALLER[c.from] ?? 'declared' },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  const call = async (from: string, match: string) => {
    const c = stack.emulator.placeCall({ to: NUMBER, from, script: [{ waitFor: 'say', match }] });
    await c.ended;
    return stack.waitEnded(c.callId, 30_000);
  };

  it('a declared version is recorded as declared; otherwise the hash of the bot and its imports from bots/', async () => {
    const declared = await call('+15550000001', 'Hi there');
    expect(declared.outcome).toBe('completed');
    expect(declared.botVersion).toBe('2.1.0');
    expect(((await (await fetch(`${stack.url}/calls/${declared.id}`)).json()) as { call: { botVersion: string } }).call.botVersion).toBe(
      '2.1.0',
    );

    expect(botSourceFiles(dir, file('hashed.ts'))).toEqual([file('hashed.ts'), file('lib/words.ts')]);
    const before = botSourceHash(dir, file('hashed.ts'));
    expect(before).toMatch(/^[0-9a-f]{12}$/);
    const first = await call('+15550000002', 'Say hello');
    expect(first.botVersion).toBe(before);

    // A file the bot does not import changes nothing; the file it imports changes its version.
    writeFileSync(file('unrelated.ts'), `export const NOTHING = 2;\n`);
    expect(botSourceHash(dir, file('hashed.ts'))).toBe(before);
    writeBots('good day');
    const after = botSourceHash(dir, file('hashed.ts'));
    expect(after).not.toBe(before);
    const second = await call('+15550000002', 'Say good day');
    expect(second.botVersion).toBe(after);
    const stored = (await (await fetch(`${stack.url}/calls?bot=hashed`)).json()) as { calls: Array<{ id: string; botVersion: string }> };
    expect(Object.fromEntries(stored.calls.map((c) => [c.id, c.botVersion]))).toEqual({ [first.id]: before, [second.id]: after });
  }, 90_000);

  it('a bot that fails to load: its call is recorded with the version of its files', async () => {
    const c = stack.emulator.placeCall({ to: NUMBER, from: '+15550000003', script: [{ wait: 20_000 }] });
    const r = await stack.waitEnded(c.callId, 30_000);
    expect(r.outcome).toBe('bot_load_failed');
    expect(r.botVersion).toBe(botSourceHash(dir, file('broken.js')));
  }, 60_000);

  it('the parent keeps a version a worker reported while the files still hash the same', () => {
    const v = new BotVersions(dir);
    const hash = v.hashOf('declared')!;
    expect(v.of('declared')).toBe(hash);
    v.learn('declared', { version: '2.1.0', hash });
    expect(v.of('declared')).toBe('2.1.0');
    writeFileSync(file('declared.ts'), `// changed\n`, { flag: 'a' });
    expect(v.of('declared')).toBe(botSourceHash(dir, file('declared.ts')));
    expect(v.of('declared')).not.toBe(hash);
    expect(v.of('no-such-bot')).toBeUndefined();
  });
});
