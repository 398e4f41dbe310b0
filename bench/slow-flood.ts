/**
 * Slow-connection flood against the real server process (issue 11, item 1).
 *
 *   npx tsx bench/slow-flood.ts [--root DIR] [--connections 2000] [--sources 1] [--fd-limit 1024]
 *
 * Starts `node --import tsx src/app/main.ts` from --root (default: this checkout; point it at an
 * older checkout to compare) under `ulimit -n <fd-limit>`, opens --connections sockets from
 * --sources loopback addresses (127.0.0.1, 127.0.0.2, …) that send request headers and part of a
 * body and then nothing, and then measures: 5 signed domain webhooks and 5 health checks (time to
 * the status line, 5 s cap: "no answer"), how many flood sockets the server still holds, and how
 * long an unfinished request is held (cap 20 s). Appends a line to bench/results/slow-flood.jsonl.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { signWebhook } from '../src/daily/signature.js';
import { record, REPO, summarize } from './lib/common.js';

const { values: args } = parseArgs({
  options: {
    root: { type: 'string', default: REPO },
    connections: { type: 'string', default: '2000' },
    sources: { type: 'string', default: '1' },
    'fd-limit': { type: 'string', default: '1024' },
  },
});
const N = Number(args.connections);
const SOURCES = Array.from({ length: Number(args.sources) }, (_, i) => `127.0.0.${i + 1}`);
const HMAC = randomBytes(32).toString('base64');
const CAP_MS = 5_000;

const proc = spawn('sh', ['-c', `ulimit -n ${Number(args['fd-limit'])} && exec node --import tsx src/app/main.ts`], {
  cwd: args.root,
  env: {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    HOST: '127.0.0.1',
    PORT: '0',
    EMULATOR_PORT: '0',
    IDLE_WORKERS: '0',
    CALL_RECORDS_PATH: ':memory:',
    DAILY_WEBHOOK_HMAC: HMAC,
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const port = await new Promise<number>((resolve, reject) => {
  let buf = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    const m = /"url":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(buf);
    if (m) resolve(Number(m[1]));
  });
  proc.once('exit', () => reject(new Error('server exited')));
});

function timed(localAddress: string, text: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const sock = net.connect({ host: '127.0.0.1', port, localAddress });
    const done = (v: number | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), CAP_MS);
    sock.on('error', () => undefined);
    sock.once('connect', () => sock.write(text));
    sock.on('data', (d) => (/^HTTP\/1\.1 200/.test(d.toString('latin1')) ? done(Math.round(performance.now() - t0)) : done(undefined)));
    sock.once('close', () => done(undefined));
  });
}
const webhook = () => {
  const body = JSON.stringify({
    version: '1.0.0',
    type: 'meeting.ended',
    id: randomUUID(),
    payload: { room: 'none' },
    event_ts: Date.now() / 1000,
  });
  const ts = String(Math.floor(Date.now() / 1000));
  return `POST /webhooks/daily HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Webhook-Timestamp: ${ts}\r\nX-Webhook-Signature: ${signWebhook(body, HMAC, ts)}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
};
const health = 'GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';

const socks: net.Socket[] = [];
let connectErrors = 0;
const t0 = performance.now();
for (let i = 0; i < N; i += 100) {
  await Promise.all(
    Array.from(
      { length: Math.min(100, N - i) },
      (_, j) =>
        new Promise<void>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port, localAddress: SOURCES[(i + j) % SOURCES.length]! });
          s.resume();
          s.on('error', () => {
            connectErrors++;
            resolve();
          });
          s.once('connect', () => {
            s.write('POST /dialin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"To":');
            resolve();
          });
          s.once('close', () => resolve());
          socks.push(s);
        }),
    ),
  );
}
const floodMs = Math.round(performance.now() - t0);
await new Promise((r) => setTimeout(r, 500));
const held = socks.filter((s) => s.readyState === 'open').length;
const webhookMs: Array<number | undefined> = [];
const healthMs: Array<number | undefined> = [];
for (let i = 0; i < 5; i++) {
  webhookMs.push(await timed(SOURCES[0]!, webhook()));
  healthMs.push(await timed(SOURCES[0]!, health));
}
// How long the oldest still-open flood socket is held (cap 20 s).
const probe = socks.find((s) => s.readyState === 'open');
const heldMs = probe
  ? await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => resolve(null), 20_000);
      probe.once('close', () => {
        clearTimeout(t);
        resolve(Math.round(performance.now() - t0));
      });
    })
  : 0;
for (const s of socks) s.destroy();
proc.kill('SIGKILL');

const answered = (v: Array<number | undefined>) => v.filter((x): x is number => x !== undefined);
const result = {
  root: args.root,
  connections: N,
  sources: SOURCES.length,
  fdLimit: Number(args['fd-limit']),
  floodMs,
  connectErrors,
  heldByServerAfterFlood: held,
  webhook: { answered: answered(webhookMs).length, of: 5, ms: summarize(answered(webhookMs)) },
  health: { answered: answered(healthMs).length, of: 5, ms: summarize(answered(healthMs)) },
  unfinishedRequestHeldMs: heldMs === null ? '>20000' : heldMs,
};
console.log(JSON.stringify(result, null, 2));
record('slow-flood', result);
process.exit(0);
