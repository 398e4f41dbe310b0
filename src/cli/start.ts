/**
 * `patchbay start [--bots <dir>] [--routes <file>] [--port <n>]`: the service, exactly as
 * `npm start` runs it (src/app/main.ts: the embedded Daily emulator unless DAILY_API_KEY is
 * set), with a bots directory that may live in the bot author's own repository.
 *
 * The options are the environment variables src/core/config.ts declares (BOTS_DIR, ROUTES_FILE, PORT):
 * they are put into this process's environment, which the service reads once and its workers
 * inherit. Bots written in TypeScript need a loader in the workers: under the compiled package the
 * workers are plain `node`, so tsx's loader (a dependency of patchbay) is added to NODE_OPTIONS.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

export interface StartOptions {
  bots?: string;
  routes?: string;
  port?: string;
}

export class StartUsageError extends Error {}

/** The environment for the service: what the options say, on top of `env`. */
export function startEnv(o: StartOptions, env: Record<string, string | undefined>, cwd: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (o.bots !== undefined) {
    const dir = path.resolve(cwd, o.bots);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new StartUsageError(`--bots ${o.bots}: no such directory`);
    out.BOTS_DIR = dir;
  }
  if (o.routes !== undefined) {
    const file = path.resolve(cwd, o.routes);
    if (!existsSync(file) || !statSync(file).isFile()) throw new StartUsageError(`--routes ${o.routes}: no such file`);
    out.ROUTES_FILE = file;
  }
  if (o.port !== undefined) {
    if (!/^\d{1,5}$/.test(o.port) || Number(o.port) > 65_535)
      throw new StartUsageError('--port must be a port number (0 for any free port)');
    out.PORT = o.port;
  }
  // Compiled package (this file is .js): let the plain-node workers load .ts bots through tsx.
  if (import.meta.url.endsWith('.js')) {
    const loader = `--import=${import.meta.resolve('tsx')}`;
    const current = env.NODE_OPTIONS ?? '';
    if (!current.includes(loader)) out.NODE_OPTIONS = `${current} ${loader}`.trim();
  }
  return out;
}

/** Starts the service in this process; resolves once it listens (it then runs until a signal). */
export async function start(o: StartOptions, env: NodeJS.ProcessEnv): Promise<void> {
  Object.assign(env, startEnv(o, env, process.cwd()));
  await import('../app/main.js');
}
