/**
 * The cycle rules of `npm run lint` (eslint.config.js) on real files: import-x/no-cycle reports
 * runtime cycles, patchbay/no-type-cycle those through `import type` (which import-x skips), and
 * neither reports an import graph without cycles.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ESLint } from 'eslint';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import { afterAll, expect, test } from 'vitest';
import { noTypeCycle } from '../scripts/eslint-no-type-cycle.js';

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
