#!/usr/bin/env node
// Launcher for `npx patchbay` / `npm run cli`: the TypeScript source through tsx when it is
// there (development), the compiled CLI otherwise (npm run build, the installed package).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const src = new URL('../src/cli/index.ts', import.meta.url);
const dist = new URL('../dist/src/cli/index.js', import.meta.url);
let cli;
if (existsSync(src)) {
  // This repository's tsconfig.json, whatever the working directory: its `paths` resolve
  // 'patchbay/sdk' to the source, here and in the workers (which inherit the variable).
  process.env.TSX_TSCONFIG_PATH ??= fileURLToPath(new URL('../tsconfig.json', import.meta.url));
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(src.href);
} else {
  cli = await import(dist.href);
}
process.exitCode = await cli.main(process.argv);
