/**
 * Helpers for the operations tests: polling a condition, process liveness through /proc, and the
 * real server started as its own process (`node --import tsx src/app/main.ts`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CallRecord } from '../../src/admission/dispatcher.js';
import type { Stack } from './stack.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURE_BOTS = fileURLToPath(new URL('../fixtures/bots/', import.meta.url));

/** Polls `check` until it returns a truthy value; rejects with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 15_000,
  everyMs = 25,
): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Process state letter from /proc (R, S, Z …), or undefined when there is no such process. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Alive = exists and is not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== 'Z' && s !== 'X';
}

/** Direct children of `pid` (from /proc/<n>/stat's ppid field). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Resolves with the first call-updated record of `callId` that satisfies `pred`. */
export function waitRecord(stack: Stack, callId: string, pred: (r: CallRecord) => boolean, timeoutMs = 20_000): Promise<CallRecord> {
  return new Promise((resolve, reject) => {
    const d = stack.rt.dispatcher;
    const on = (r: CallRecord) => {
      if (r.callId !== callId || !pred(r)) return;
      cleanup();
      resolve(r);
    };
    const cleanup = () => {
      clearTimeout(timer);
      d.off('call-updated', on);
      d.off('call-ended', on);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`call ${callId}: no matching record within ${timeoutMs} ms`));
    }, timeoutMs);
    d.on('call-updated', on);
    d.on('call-ended', on);
    const now = d.liveCalls().find((r) => r.callId === callId);
    if (now) on(now);
  });
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface ServerProcess {
  proc: ChildProcess;
  pid: number;
  /** The service's base URL. */
  url: string;
  /** The embedded emulator's origin (control API under /_emulator). */
  emulator: string;
  /** Every JSON log line so far (stdout). */
  lines: LogLine[];
  stderr: () => string;
  /** Resolves with the first log line (past or future) that matches. */
  waitLine(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Settles with the exit code/signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kills the process (and its workers) if still running. */
  kill(): Promise<void>;
}

/** Starts the real server: `node [--import tsx] <entry>` with `env` on ephemeral ports. */
export async function startServerProcess(
  env: Record<string, string>,
  opts: { entry?: string; tsx?: boolean; cwd?: string; startTimeoutMs?: number; nodeArgs?: string[] } = {},
): Promise<ServerProcess> {
  const entry = opts.entry ?? 'src/app/main.ts';
  const args = [...(opts.nodeArgs ?? []), ...(opts.tsx === false ? [] : ['--import', 'tsx']), entry];
  const proc = spawn(process.execPath, args, {
    cwd: opts.cwd ?? ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: '0',
      EMULATOR_PORT: '0',
      LOG_LEVEL: 'info',
      // Tests never write call records into the checkout's ./data.
      CALL_RECORDS_PATH: ':memory:',
      // The per-call path unless a test asks for warm rooms (they keep a room open: "no room left" checks).
      WARM_ROOMS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        lines.push({ msg: line, raw: true });
      }
    }
    for (const w of [...waiters]) w();
  });
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (err.length < 64_000) err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of [...waiters]) w();
    }),
  );
  let done = false;
  void exited.then(() => (done = true));

  const waitLine = (pred: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      let seen = 0;
      const check = () => {
        for (; seen < lines.length; seen++) {
          if (pred(lines[seen]!)) {
            cleanup();
            return resolve(lines[seen]!);
          }
        }
        if (done) {
          cleanup();
          reject(new Error(`server exited before the expected log line; stderr: ${err.slice(-2000)}`));
        }
      };
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err.slice(-2000)}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  const kill = async () => {
    if (done) return;
    const workers = childPids(proc.pid!);
    proc.kill('SIGKILL');
    await exited;
    for (const pid of workers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  };

  try {
    const listening = await waitLine((l) => l.msg === 'patchbay listening', opts.startTimeoutMs ?? 30_000);
    const emu = lines.find((l) => typeof l.emulator === 'string');
    return {
      proc,
      pid: proc.pid!,
      url: String(listening.url),
      emulator: String(emu?.emulator ?? ''),
      lines,
      stderr: () => err,
      waitLine,
      exited,
      kill,
    };
  } catch (e) {
    await kill();
    throw e;
  }
}

export async function getJson<T = Record<string, unknown>>(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
}

export async function postJson<T = Record<string, unknown>>(url: string, body: unknown, headers: Record<string, string> = {}) {
  return getJson<T>(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}
