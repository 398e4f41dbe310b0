/**
 * The layering rules of `npm run lint` (the rooms' import table, scripts/layers.js) and its cycle
 * rules (eslint.config.js) on real files: import-x/no-cycle reports
 * runtime cycles, patchbay/no-type-cycle those through `import type` (which import-x skips), and
 * neither reports an import graph without cycles.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ESLint } from 'eslint';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import { afterAll, expect, test } from 'vitest';
import { noTypeCycle } from '../../scripts/eslint-no-type-cycle.js';
import { LAYERS, layerZones } from '../../scripts/layers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'patchbay-lint-'));
const src = path.join(dir, 'src');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const files: Record<string, string> = {
  // app ↔ route through a type: the server's AppDeps shape.
  'server/app.ts': "import { route } from './route.js';\nexport interface Deps { n: number }\nexport const app = () => route;\n",
  'server/route.ts': "import type { Deps } from './app.js';\nexport const route = (d: Deps) => d.n;\n",
  // A runtime cycle.
  'emu/core.ts': "import { hook } from './hooks.js';\nexport class ApiError extends Error {}\nexport const core = () => hook;\n",
  'emu/hooks.ts': "import { ApiError } from './core.js';\nexport const hook = () => new ApiError();\n",
  // No cycle: a → b → c, types and values.
  'ok/a.ts': "import { b } from './b.js';\nimport type { C } from './c.js';\nexport const a = (c: C) => b(c);\n",
  'ok/b.ts': "import { type C, c } from './c.js';\nexport const b = (x: C) => c(x);\n",
  'ok/c.ts': 'export type C = number;\nexport const c = (x: C) => x;\n',
};
for (const [f, text] of Object.entries(files)) {
  mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
  writeFileSync(path.join(src, f), text);
}

test('runtime cycles → import-x/no-cycle; cycles through import type → patchbay/no-type-cycle; none otherwise', async () => {
  const resolver = createNodeResolver({ extensions: ['.ts', '.js'], extensionAlias: { '.js': ['.ts', '.js'] } });
  const eslint = new ESLint({
    cwd: dir,
    overrideConfigFile: true,
    overrideConfig: [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        plugins: { 'import-x': importX, patchbay: { rules: { 'no-type-cycle': noTypeCycle } } },
        settings: {
          'import-x/extensions': ['.ts', '.js'],
          'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
          'import-x/resolver-next': [resolver],
          'patchbay/no-type-cycle': { resolver, root: src },
        },
        rules: { 'import-x/no-cycle': 'error', 'patchbay/no-type-cycle': 'error' },
      },
    ],
  });
  const results = await eslint.lintFiles(['src/**/*.ts']);
  const found = results
    .flatMap((r) =>
      r.messages.map(
        (m) => `${path.relative(src, r.filePath)}:${m.line} ${m.ruleId}${m.ruleId === 'patchbay/no-type-cycle' ? ` ${m.message}` : ''}`,
      ),
    )
    .sort();
  expect(found).toEqual([
    'emu/core.ts:1 import-x/no-cycle',
    'emu/hooks.ts:1 import-x/no-cycle',
    'server/app.ts:1 patchbay/no-type-cycle Import cycle through type-only imports: server/app.ts → server/route.ts → server/app.ts',
    'server/route.ts:1 patchbay/no-type-cycle Import cycle through type-only imports: server/route.ts → server/app.ts → server/route.ts',
  ]);
});

test('the layering rule (scripts/layers.js → import-x/no-restricted-paths) refuses an upward import and allows the listed ones', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'patchbay-layers-'));
  const lsrc = path.join(root, 'src');
  const stubs: Record<string, string> = {
    'core/outcome.ts': 'export const o = 1;\n',
    'admission/dispatcher.ts': 'export const d = 1;\n',
    'workers/protocol.ts': 'export const p = 1;\n',
    'workers/parent/pool.ts': 'export const pool = 1;\n',
    'emulator/client.ts': 'export const client = 1;\n',
    'emulator/rest.ts': 'export const rest = 1;\n',
    // Deliberate violations: core reaching up; the worker child reaching the parent side and a
    // room of the emulator it is not allowed; the protocol reaching its child room.
    'core/bad.ts': "import { d } from '../admission/dispatcher.js';\nexport const x = d;\n",
    'workers/child/bad.ts':
      "import { pool } from '../parent/pool.js';\nimport { rest } from '../../emulator/rest.js';\nimport { client } from '../../emulator/client.js';\nimport { p } from '../protocol.js';\nexport const x = [pool, rest, client, p];\n",
    'workers/bad.ts': "import { y } from './child/ok.js';\nexport const x = y;\n",
    'workers/child/ok.ts': "import { o } from '../../core/outcome.js';\nexport const y = o;\n",
    'admission/ok.ts':
      "import { pool } from '../workers/parent/pool.js';\nimport { p } from '../workers/protocol.js';\nexport const x = [pool, p];\n",
  };
  for (const [f, text] of Object.entries(stubs)) {
    mkdirSync(path.dirname(path.join(lsrc, f)), { recursive: true });
    writeFileSync(path.join(lsrc, f), text);
  }
  try {
    const resolver = createNodeResolver({ extensions: ['.ts', '.js'], extensionAlias: { '.js': ['.ts', '.js'] } });
    const eslint = new ESLint({
      cwd: root,
      overrideConfigFile: true,
      overrideConfig: [
        {
          files: ['**/*.ts'],
          languageOptions: { parser: tseslint.parser },
          plugins: { 'import-x': importX },
          settings: { 'import-x/extensions': ['.ts', '.js'], 'import-x/resolver-next': [resolver] },
          rules: { 'import-x/no-restricted-paths': ['error', { zones: layerZones(lsrc) }] },
        },
      ],
    });
    const results = await eslint.lintFiles(['src/**/*.ts']);
    const found = results.flatMap((r) => r.messages.map((m) => `${path.relative(lsrc, r.filePath)}:${m.line} ${m.ruleId}`)).sort();
    expect(found).toEqual([
      'core/bad.ts:1 import-x/no-restricted-paths',
      'workers/bad.ts:1 import-x/no-restricted-paths',
      'workers/child/bad.ts:1 import-x/no-restricted-paths',
      'workers/child/bad.ts:2 import-x/no-restricted-paths',
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('docs/architecture.md lists the same layering as scripts/layers.js', () => {
  const doc = readFileSync(new URL('../../docs/architecture.md', import.meta.url), 'utf8')
    .split('\n## Layering')[1]!
    .split('\n## ')[0]!;
  const rows = [...doc.matchAll(/^\| `src\/([\w/]+)` \| ([^|]*) \|/gm)].map(([, room, may]) => [
    room,
    [...may!.matchAll(/`src\/([\w/]+)`/g)].map((m) => m[1]),
  ]);
  expect(Object.fromEntries(rows)).toEqual(LAYERS);
});
