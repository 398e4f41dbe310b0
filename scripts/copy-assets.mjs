#!/usr/bin/env node
/**
 * After `tsc -p tsconfig.build.json`: copies what tsc does not emit but the compiled service
 * reads at run time into dist/ — non-TypeScript files of bots/ (routes.json, audio …) and the
 * dashboard's static files. Run by `npm run build`.
 */
import { cpSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const isSource = (p) => /\.(c|m)?tsx?$/.test(p) && !p.endsWith('.d.ts');

const copies = [
  // [from, to, filter]
  ['bots', 'dist/bots', (src) => !isSource(src)],
  ['src/server/dashboard', 'dist/src/server/dashboard', (src) => !isSource(src)],
];

for (const [from, to, filter] of copies) {
  const src = path.join(root, from);
  if (!existsSync(src)) continue;
  cpSync(src, path.join(root, to), { recursive: true, filter: (s) => filter(s) });
  console.log(`copy-assets: ${from} → ${to}`);
}
