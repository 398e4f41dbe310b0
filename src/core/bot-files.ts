/** Where a bot's module lives in the bots directory. Shared by the router (start-up check) and the worker (loading). */
import { existsSync } from 'node:fs';
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
