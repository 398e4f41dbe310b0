/**
 * Processes of the cluster test: service replicas (the real `src/app/main.ts`, one Node
 * process each, with their own worker children) and nginx in front of them, all on 127.0.0.1.
 * Everything here is started as a child of the test process and stopped by it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LogLine {
  level?: number;
  msg?: string;
  callId?: string;
  [k: string]: unknown;
}

export interface Replica {
  name: string;
  port: number;
  url: string;
  proc: ChildProcess;
  pid: number;
  /** Every JSON log line the replica printed so far. */
  lines: LogLine[];
  exited: Promise<Exit>;
  /** The replica's worker processes alive right now (children of its pid). */
  workerPids(): number[];
}

/**
 * Starts one replica (`node --import tsx src/app/main.ts`) with `env` on top of a minimal
 * environment, and resolves once it logs "patchbay listening". Its stdout (pino JSON) goes to
 * `logFile` and is parsed into `lines`.
 */
export async function startReplica(opts: {
  name: string;
  port: number;
  env: Record<string, string>;
  logFile: string;
  readyTimeoutMs?: number;
  /** A compiled server.js to run instead of src/app/main.ts under tsx (benchmarks). */
  entry?: string;
}): Promise<Replica> {
  const args = opts.entry ? [opts.entry] : ['--import', 'tsx', path.join(REPO, 'src/app/main.ts')];
  const proc = spawn(process.execPath, args, {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: String(opts.port),
      CALL_RECORDS_PATH: ':memory:',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  proc.stderr.pipe(log, { end: false });
  const lines: LogLine[] = [];
  const exited = new Promise<Exit>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${opts.name} did not start within ${opts.readyTimeoutMs ?? 30_000} ms (log: ${opts.logFile})`)),
      opts.readyTimeoutMs ?? 30_000,
    );
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`${opts.name} exited while starting (${e.code ?? e.signal}); log: ${opts.logFile}`));
    });
    createInterface({ input: proc.stdout }).on('line', (text) => {
      log.write(`${text}\n`);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        return;
      }
      lines.push(line);
      if (line.msg === 'patchbay listening') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await ready;
  const pid = proc.pid!;
  return {
    name: opts.name,
    port: opts.port,
    url: `http://127.0.0.1:${opts.port}`,
    proc,
    pid,
    lines,
    exited,
    workerPids: () => childPids(pid),
  };
}

/** Pids whose parent is `ppid` (from /proc). */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may hold spaces, so parse after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers signal 0; it has exited.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Resolves when `check()` is true; rejects after `timeoutMs` with `what` in the message. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface AccessLogEntry {
  status: number;
  /** Upstreams tried, in order ("127.0.0.1:port"). */
  upstreams: string[];
  /** Their statuses, in order ("503", "200", "502" …; "-" when no answer). */
  upstreamStatuses: string[];
  uri: string;
  method: string;
  requestTimeMs: number;
  callId: string | undefined;
}

export interface Nginx {
  port: number;
  url: string;
  dir: string;
  proc: ChildProcess;
  exited: Promise<Exit>;
  accessLog(): AccessLogEntry[];
  stop(): Promise<Exit>;
}

/**
 * The nginx config the cluster uses (also quoted in docs/scaling.md): round robin over the
 * replicas; a 503 (replica full or draining), a refused connection or a reset is passed to the
 * next replica, POST included (`non_idempotent`), at most once per replica.
 */
export function nginxConf(o: { dir: string; port: number; upstreamPorts: number[] }): string {
  const d = o.dir;
  return `# generated by test/cluster/procs.ts
daemon off;
master_process on;
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/error.log notice;
events { worker_connections 1024; }
http {
  client_body_temp_path ${d}/client_body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
  log_format calls escape=json '{"status":"$status","upstream":"$upstream_addr","ustatus":"$upstream_status","uri":"$uri","method":"$request_method","rt":"$request_time","body":"$request_body"}';
  access_log ${d}/access.log calls;

  upstream patchbay {
    # max_fails=0: a replica answering 503 is full *now*, not broken; try it again on the next call.
${o.upstreamPorts.map((p) => `    server 127.0.0.1:${p} max_fails=0;`).join('\n')}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${o.port};
    client_max_body_size 16k;
    client_body_buffer_size 16k;
    location / {
      proxy_pass http://patchbay;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_connect_timeout 1s;
      proxy_read_timeout 10s;
      proxy_next_upstream error timeout http_503 non_idempotent;
      proxy_next_upstream_tries ${o.upstreamPorts.length};
      proxy_next_upstream_timeout 8s;
    }
  }
}
`;
}

/** Writes the config into `dir`, checks it (`nginx -t`), runs nginx in the foreground, and waits until it accepts connections. */
export async function startNginx(o: { dir: string; port: number; upstreamPorts: number[]; bin?: string }): Promise<Nginx> {
  const bin = o.bin ?? '/usr/sbin/nginx';
  const conf = path.join(o.dir, 'nginx.conf');
  writeFileSync(conf, nginxConf(o));
  const args = ['-p', o.dir, '-c', conf, '-e', path.join(o.dir, 'error.log')];
  await new Promise<void>((resolve, reject) => {
    const t = spawn(bin, [...args, '-t', '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    t.stderr.on('data', (b: Buffer) => (err += b.toString()));
    t.once('error', reject);
    t.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`nginx -t failed: ${err}`))));
  });
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<Exit>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitUntil(
    () => {
      if (gone) throw new Error('nginx exited at start-up (see error.log)');
      return new Promise<boolean>((resolve) => {
        const s = net.connect(o.port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
    },
    'nginx to listen',
    10_000,
  );
  return {
    port: o.port,
    url: `http://127.0.0.1:${o.port}`,
    dir: o.dir,
    proc,
    exited,
    accessLog: () => parseAccessLog(path.join(o.dir, 'access.log')),
    async stop() {
      if (!gone) proc.kill('SIGQUIT'); // graceful: finish open requests, then exit
      const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      const e = await exited;
      clearTimeout(t);
      return e;
    },
  };
}

export function parseAccessLog(file: string): AccessLogEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: AccessLogEntry[] = [];
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    const j = JSON.parse(l) as Record<string, string>;
    let callId: string | undefined;
    try {
      callId = (JSON.parse(j.body ?? '') as { callId?: string }).callId;
    } catch {
      callId = undefined;
    }
    // "a, b : c" — commas between tries, " : " between upstream groups (one group here).
    const split = (s: string | undefined) => (s ?? '').split(/\s*,\s*|\s+:\s+/).filter((x) => x.length > 0);
    out.push({
      status: Number(j.status),
      upstreams: split(j.upstream).filter((x) => x !== '-'),
      upstreamStatuses: split(j.ustatus),
      uri: j.uri ?? '',
      method: j.method ?? '',
      requestTimeMs: Math.round(Number(j.rt) * 1000),
      callId,
    });
  }
  return out;
}
