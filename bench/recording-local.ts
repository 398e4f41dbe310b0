/**
 * Local recording's cost per recorded call minute (issue 24, benchmarks): one LocalRecorder fed
 * like a call — 20 ms caller frames in real time, a 3 s bot utterance every 6 s — for DURATION_S
 * seconds; CPU time of this process, heap growth and file size, scaled to a minute.
 *   node --import tsx bench/recording-local.ts [seconds=20]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRecorder } from '../src/workers/child/local-recording.js';

const seconds = Number(process.argv[2] ?? 20);
const dir = mkdtempSync(join(tmpdir(), 'pb-bench-rec-'));
const noise = (n: number) => Int16Array.from({ length: n }, () => Math.round((Math.random() - 0.5) * 8_000));
const frame = noise(320);
const utterance = noise(3 * 24_000);
global.gc?.();
const heap0 = process.memoryUsage().heapUsed;
const cpu0 = process.cpuUsage();
const rec = new LocalRecorder(dir, 'bench.wav');
let peakHeap = 0;
const started = Date.now();
let n = 0;
await new Promise<void>((resolve) => {
  const t = setInterval(() => {
    rec.caller(frame, 16_000);
    if (n % 300 === 0) rec.bot(utterance, 24_000);
    n++;
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed - heap0);
    if (Date.now() - started >= seconds * 1000) {
      clearInterval(t);
      resolve();
    }
  }, 20);
});
rec.close();
const cpu = process.cpuUsage(cpu0);
const perMin = 60 / seconds;
const bytes = statSync(join(dir, 'bench.wav')).size;
console.log(
  JSON.stringify({
    seconds,
    cpuMsPerCallMinute: Math.round(((cpu.user + cpu.system) / 1000) * perMin),
    peakHeapGrowthMB: +(peakHeap / 1e6).toFixed(2),
    diskMBPerCallMinute: +((bytes / 1e6) * perMin).toFixed(2),
  }),
);
rmSync(dir, { recursive: true, force: true });
