/**
 * A throw-away PostgreSQL server for tests: `initdb` into a temporary directory, `postgres` on a
 * free port of 127.0.0.1 with trust auth and its socket in that directory. PostgreSQL refuses to
 * run as root, so as root the cluster belongs to `nobody` and the binaries run through `setpriv`.
 * No binaries → a clear error (install Debian's `postgresql`; .ci/run does), never a skipped test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface PgServer {
  url: string;
  port: number;
  dir: string;
  /** URL of another database of this server (created by `createDatabase`). */
  urlFor(db: string): string;
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown (SIGINT): clients are cut, as when a server restarts. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stop and delete the cluster. */
  remove(): Promise<void>;
  /** What the server printed (for failing tests). */
  output(): string;
}

const NOBODY = { uid: 65534, gid: 65534 };

export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) {
    throw new Error(
      `PostgreSQL is not installed: no ${root}/<version>/bin/initdb. Install Debian's "postgresql" package ` +
        '(apt-get install postgresql; .ci/run does this when it is missing). These tests need a real server.',
    );
  }
  return path.join(root, versions[0]!, 'bin');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;
/** The command line that runs `bin` as the cluster's owner. */
function asOwner(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', bin, ...args]] : [bin, args];
}

export async function startPostgres(): Promise<PgServer> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-pg-'));
  const data = path.join(dir, 'data');
  if (asRoot) chownSync(dir, NOBODY.uid, NOBODY.gid);
  const [cmd, args] = asOwner(path.join(bin, 'initdb'), [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  const init = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8' });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout || init.error?.message}`);
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  let out = '';
  const urlFor = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;

  const waitReady = async () => {
    const until = Date.now() + 30_000;
    for (;;) {
      const c = new pg.Client({ connectionString: urlFor('postgres'), connectionTimeoutMillis: 1_000 });
      try {
        await c.connect();
        await c.query('SELECT 1');
        await c.end();
        return;
      } catch (err) {
        await c.end().catch(() => undefined);
        if (Date.now() > until || child?.exitCode !== null)
          throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${out}`, { cause: err });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const server: PgServer = {
    url: urlFor('postgres'),
    port,
    dir,
    urlFor,
    async createDatabase(name) {
      const c = new pg.Client({ connectionString: urlFor('postgres') });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await c.end();
      }
      return urlFor(name);
    },
    async start() {
      if (child && child.exitCode === null) return;
      const [c, a] = asOwner(path.join(bin, 'postgres'), [
        '-D',
        data,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${dir}`,
        '-c',
        'fsync=off',
        '-c',
        'max_connections=50',
        '-c',
        'shared_buffers=16MB',
      ]);
      child = spawn(c, a, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      await waitReady();
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGINT');
      });
    },
    async remove() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    output: () => out,
  };
  try {
    await server.start();
  } catch (err) {
    await server.remove();
    throw err;
  }
  return server;
}
