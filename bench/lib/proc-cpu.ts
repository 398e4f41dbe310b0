/**
 * CPU time of a process tree and of the whole machine, read from /proc (Linux), sampled during a
 * round of calls: how many core-milliseconds the bench's own processes (service, emulator, workers,
 * their replacements) spent, against what the machine's cores had, so a latency above Daily's
 * floor can be told apart from a CPU that had nothing left.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ = 100 on Linux

interface ProcTimes {
  ppid: number;
  cpuMs: number;
}

function procTimes(pid: number): ProcTimes | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS };
  } catch {
    return undefined; // exited between readdir and read
  }
}

/** utime + stime of `root` and every live descendant, and how many processes that is. */
export function treeCpuMs(root = process.pid): { cpuMs: number; processes: number; pids: Map<number, number> } {
  const all = new Map<number, ProcTimes>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const t = procTimes(pid);
    if (t) all.set(pid, t);
  }
  let cpuMs = 0;
  let processes = 0;
  const pids = new Map<number, number>();
  for (const [pid, t] of all) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = all.get(p)?.ppid) {
      if (p !== root) continue;
      cpuMs += t.cpuMs;
      processes++;
      pids.set(pid, t.cpuMs);
      break;
    }
  }
  return { cpuMs, processes, pids };
}

/** Busy and total core-milliseconds of the whole machine since boot (/proc/stat's `cpu` line). */
export function machineCpuMs(): { busyMs: number; totalMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { busyMs: (total - idle) * TICK_MS, totalMs: total * TICK_MS };
}

/** CPU spent in a window: by the tree, by the processes born in it (e.g. the pool's replacements), by the machine. */
export interface CpuWindow {
  wallMs: number;
  treeCoreMs: number;
  newbornCoreMs: number;
  machineBusyShare: number;
}

export interface CpuSample {
  atMs: number;
  treeMs: number;
  machineBusyMs: number;
  machineTotalMs: number;
  pids: Map<number, number>;
}

/** Samples every `everyMs` until stopped; `between(a, b)` gives the CPU spent between two instants. */
export function sampleCpu(everyMs = 100): {
  stop(): void;
  between(fromMs: number, toMs: number): CpuWindow | undefined;
} {
  const samples: CpuSample[] = [];
  const take = () => {
    const m = machineCpuMs();
    const t = treeCpuMs();
    samples.push({ atMs: Date.now(), treeMs: t.cpuMs, pids: t.pids, machineBusyMs: m.busyMs, machineTotalMs: m.totalMs });
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      take();
    },
    between(fromMs, toMs) {
      const a = [...samples].reverse().find((s) => s.atMs <= fromMs) ?? samples[0];
      const b = samples.find((s) => s.atMs >= toMs) ?? samples.at(-1);
      if (!a || !b || b.atMs <= a.atMs) return undefined;
      let newbornCoreMs = 0;
      for (const [pid, ms] of b.pids) if (!a.pids.has(pid)) newbornCoreMs += ms;
      return {
        wallMs: b.atMs - a.atMs,
        treeCoreMs: b.treeMs - a.treeMs,
        newbornCoreMs,
        machineBusyShare: (b.machineBusyMs - a.machineBusyMs) / (b.machineTotalMs - a.machineTotalMs),
      };
    },
  };
}
