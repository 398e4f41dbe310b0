#!/usr/bin/env node
/**
 * After `tsc -p tsconfig.build.json`: copies what tsc does not emit but the compiled service
 * reads at run time into dist/ — non-TypeScript files of bots/ (routes.json, audio …) and the
 * dashboard's static files. Run by `npm run build`.
 *
 *   node scripts/copy-assets.mjs [outDir]     (default: dist, relative to the repository)
 */
import { cpSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = path.resolve(root, process.argv[2] ?? 'dist');
const isSource = (p) => /\.(c|m)?tsx?$/.test(p) && !p.endsWith('.d.ts');

const copies = [
  // [from, to, filter]
  ['bots', 'bots', (src) => !isSource(src)],
  ['src/server/dashboard', 'src/server/dashboard', (src) => !isSource(src)],
];

for (const [from, to, filter] of copies) {
  const src = path.join(root, from);
  if (!existsSync(src)) continue;
  const dest = path.join(outDir, to);
  cpSync(src, dest, { recursive: true, filter: (s) => filter(s) });
  console.log(`copy-assets: ${from} → ${path.relative(root, dest)}`);
}
