/**
 * Unsigned deep bodies against the real server process (issue 11, item 8b).
 *
 *   npx tsx bench/deep-body.ts [--root DIR] [--depth 5000000] [--runs 3]
 *
 * Starts `node --import tsx src/app/main.ts` from --root (default: this checkout) with
 * MAX_BODY_BYTES=16 MiB and a pinless secret, POSTs a `[[[…]]]` body --depth deep with a bad
 * signature to /dialin --runs times, and reports each answer's status and time and the server's
 * peak RSS (VmHWM) growth. Appends a line to bench/results/deep-body.jsonl.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { record, REPO } from './lib/common.js';

const { values: args } = parseArgs({
  options: {
    root: { type: 'string', default: REPO },
    depth: { type: 'string', default: '5000000' },
    runs: { type: 'string', default: '3' },
  },
});
const depth = Number(args.depth);
const proc = spawn(process.execPath, ['--import', 'tsx', 'src/app/main.ts'], {
  cwd: args.root,
  env: {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    HOST: '127.0.0.1',
    PORT: '0',
    EMULATOR_PORT: '0',
    IDLE_WORKERS: '0',
    CALL_RECORDS_PATH: ':memory:',
    MAX_BODY_BYTES: String(16 * 2 ** 20),
    AUTH_FAILURE_LIMIT: '1000',
    DAILY_PINLESS_HMAC: randomBytes(32).toString('base64'),
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise<string>((resolve, reject) => {
  let buf = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(buf);
    if (m) resolve(m[1]!);
  });
  proc.once('exit', () => reject(new Error('server exited')));
});
const hwmMb = () => Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1] ?? 0) / 102.4) / 10;

const body = Buffer.from('['.repeat(depth) + ']'.repeat(depth));
const hwmBefore = hwmMb();
const runs: Array<{ status: number; ms: number }> = [];
for (let i = 0; i < Number(args.runs); i++) {
  const t0 = performance.now();
  const r = await fetch(`${url}/dialin`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-pinless-timestamp': String(Math.floor(Date.now() / 1000)),
      'x-pinless-signature': Buffer.alloc(32, 1).toString('base64'),
    },
    body,
  });
  await r.arrayBuffer();
  runs.push({ status: r.status, ms: Math.round(performance.now() - t0) });
}
const result = { root: args.root, depth, bytes: body.length, runs, peakRssGrowthMb: Math.round((hwmMb() - hwmBefore) * 10) / 10 };
proc.kill('SIGKILL');
console.log(JSON.stringify(result));
record('deep-body', result);
process.exit(0);
