#!/usr/bin/env node
// Launcher for `npx patchbay` / `npm run cli`: the TypeScript source through tsx when it is
// there (development), the compiled CLI otherwise (npm run build).
import { existsSync } from 'node:fs';

const src = new URL('../src/cli/index.ts', import.meta.url);
const dist = new URL('../dist/src/cli/index.js', import.meta.url);
let cli;
if (existsSync(src)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(src.href);
} else {
  cli = await import(dist.href);
}
process.exitCode = await cli.main(process.argv);
