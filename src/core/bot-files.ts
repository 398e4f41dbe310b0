/** Where a bot's module lives in the bots directory. Shared by the router (start-up check) and the worker (loading). */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/i;

/** The built-in apology bot's name (src/workers/child/apology-bot.ts); never a file in the bots directory. */
export const APOLOGY_BOT = 'patchbay:apology';

export function resolveBotFile(botsDir: string, name: string): string | undefined {
  if (!NAME.test(name)) return undefined;
  for (const candidate of [`${name}.js`, `${name}.ts`, `${name}/index.js`, `${name}/index.ts`]) {
    const file = path.join(botsDir, candidate);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** Relative module specifiers of a source file (static and dynamic imports, re-exports, require). */
const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

/** The file a relative specifier names (TypeScript's `./x.js` → `./x.ts` included), when it exists. */
function resolveImport(fromFile: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(fromFile), spec);
  const noExt = base.replace(/\.[cm]?[jt]s$/, '');
  const candidates = [
    base,
    `${noExt}.ts`,
    `${noExt}.js`,
    `${noExt}.mts`,
    `${noExt}.mjs`,
    path.join(base, 'index.ts'),
    path.join(base, 'index.js'),
  ];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/**
 * The files a bot is made of: its own file and, transitively, what it imports from the bots
 * directory (relative imports only; `patchbay/sdk` and packages are not the bot's). Sorted.
 */
export function botSourceFiles(botsDir: string, file: string): string[] {
  const root = path.resolve(botsDir) + path.sep;
  const seen = new Set<string>();
  const todo = [path.resolve(file)];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    if (!/\.[cm]?[jt]s$/.test(f)) continue;
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const m of text.matchAll(IMPORT_RE)) {
      const dep = resolveImport(f, m[1]!);
      if (dep && dep.startsWith(root) && !seen.has(dep)) todo.push(dep);
    }
  }
  return [...seen].sort();
}

/**
 * A bot's version when it declares none: the first 12 hex digits of a SHA-256 over its files (path
 * relative to the bots directory, then the content, per file). Any change to the bot's file or to
 * what it imports from the bots directory changes it; nothing else does.
 */
export function botSourceHash(botsDir: string, file: string): string {
  const h = createHash('sha256');
  for (const f of botSourceFiles(botsDir, file)) {
    h.update(path.relative(path.resolve(botsDir), f)).update('\0');
    try {
      h.update(readFileSync(f));
    } catch {
      h.update('(unreadable)');
    }
    h.update('\0');
  }
  return h.digest('hex').slice(0, 12);
}
