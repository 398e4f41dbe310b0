// ESLint flat config (docs/contributing.md says why these tools and these rules).
//
//   npm run lint     eslint + prettier --check
//   npm run format   prettier --write
//
// Formatting is Prettier's business (.prettierrc.json); nothing here is about layout.
import js from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import { noTypeCycle } from './scripts/eslint-no-type-cycle.js';
import { layerZones } from './scripts/layers.js';

const resolver = createNodeResolver({
  extensions: ['.ts', '.js', '.mjs', '.json'],
  // Source imports say `./x.js` for `./x.ts` (NodeNext).
  extensionAlias: { '.js': ['.ts', '.js'] },
  // 'patchbay/sdk' etc. resolve to the source, as tsconfig.json `paths` say.
  tsconfig: { configFile: `${import.meta.dirname}/tsconfig.json` },
  conditionNames: ['types', 'import', 'node', 'default'],
});

const nodeGlobals = Object.fromEntries(
  [
    'process',
    'console',
    'URL',
    'Buffer',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'fetch',
    'AbortSignal',
    'performance',
  ].map((g) => [g, 'readonly']),
);
const browserGlobals = Object.fromEntries(
  [
    'window',
    'document',
    'CSS',
    'location',
    'history',
    'console',
    'fetch',
    'URL',
    'URLSearchParams',
    'EventSource',
    'WebSocket',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'requestAnimationFrame',
    'localStorage',
    'navigator',
    'Intl',
    'AbortController',
  ].map((g) => [g, 'readonly']),
);

export default tseslint.config(
  {
    ignores: ['dist/**', 'test-output/**', 'coverage/**', 'data/**', 'node_modules/**', 'test/fixtures/**', 'bench/results/**'],
  },
  js.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },

  // ── TypeScript: type-aware rules ──
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: {
      parserOptions: {
        // One TypeScript program for the whole repository (tsconfig.json); the config files it
        // does not include get a default project.
        projectService: { allowDefaultProject: ['vitest.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Promises: a call that is not awaited, or a promise where a callback's return is ignored,
      // is how a telephony backend leaves a caller on hold with nobody coming.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // Vocabularies (outcomes, stages, actions) are unions: a switch over one must handle each.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      '@typescript-eslint/no-for-in-array': 'error',
      // Imports: `import type` for types (verbatimModuleSyntax keeps the rest as written).
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      // Dead declarations; `_name` marks a deliberately unused one.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrors: 'none',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // `any` is sometimes the honest type at a boundary (JSON, daily-js): a warning to look at,
      // not an error.
      '@typescript-eslint/no-explicit-any': 'warn',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },

  // ── Layering: the rooms' import rules and no import cycles ──
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX, patchbay: { rules: { 'no-type-cycle': noTypeCycle } } },
    settings: {
      // Files with other extensions are skipped (never parsed), so cycles through them go unseen.
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [resolver],
      'patchbay/no-type-cycle': { resolver, root: `${import.meta.dirname}/src` },
    },
    rules: {
      // Runtime cycles (import-x skips `import type` edges by design)…
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // …and cycles through type-only imports, which are still layering knots.
      'patchbay/no-type-cycle': 'error',
      'import-x/no-self-import': 'error',
      // Which room may import which (scripts/layers.js, docs/architecture.md "Layering").
      'import-x/no-restricted-paths': ['error', { zones: layerZones(`${import.meta.dirname}/src`) }],
    },
  },

  // ── Plain JavaScript ──
  {
    files: ['bin/**/*.mjs', 'scripts/**/*.{js,mjs}', 'bench/**/*.mjs', 'eslint.config.js'],
    languageOptions: { globals: nodeGlobals },
  },
  {
    files: ['src/server/dashboard/**/*.js'],
    languageOptions: { sourceType: 'module', globals: browserGlobals },
  },
  {
    // Tests read JSON answers of every shape; `any` there is the honest type.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
