/**
 * Fuzzing the HTTP surface of a real app on 127.0.0.1 (real emulator, real workers): thousands of
 * generated requests — wrong types, huge strings, deep nesting, invalid UTF-8, duplicate keys,
 * `__proto__` / `constructor` keys, wrong content types, chunked and oversized bodies, odd headers,
 * methods and paths — both unsigned and correctly signed (so they get past the signature check and
 * reach parsing and validation). Oracle: never a 5xx, the app keeps answering, no room and no bot
 * is ever started, the heap stays flat. The count tried and the status mix are printed.
 *
 * Reproducible: FUZZ_SEED picks the run (printed), FUZZ_COUNT the size (default 3000).
 */
import http from 'node:http';
import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signPinless } from '../../src/daily/signature.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';
import { expectNoLeaks } from '../helpers/invariants.js';

const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface FuzzRequest {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  /** Send the body in these many chunks with Transfer-Encoding: chunked. */
  chunks?: number;
}

interface Answer {
  status: number;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function send(base: string, r: FuzzRequest): Promise<Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { ...r.headers };
    if (r.body && !r.chunks) headers['content-length'] = r.body.length;
    const req = http.request({ host: u.hostname, port: u.port, method: r.method, path: r.path, headers, agent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The server may close the socket on an oversized chunked body after answering 413.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') resolve({ status: -1, body: err.code });
      else reject(err);
    });
    if (r.body && r.chunks) {
      const size = Math.ceil(r.body.length / r.chunks);
      for (let i = 0; i < r.body.length; i += size) req.write(r.body.subarray(i, i + size));
      req.end();
    } else req.end(r.body);
  });
}

/** Generators. Every /dialin call body below has at least one required field invalid: none may start a bot. */
function arbitraries(secret: string, webhookSecret: string) {
  const ts = () => String(Math.floor(Date.now() / 1000));
  const signedHeaders = (body: Buffer, prefix: 'pinless' | 'webhook'): Record<string, string> => {
    const t = ts();
    const sig = signPinless(body, prefix === 'pinless' ? secret : webhookSecret, t);
    return prefix === 'pinless'
      ? { 'x-pinless-timestamp': t, 'x-pinless-signature': sig }
      : { 'x-webhook-timestamp': t, 'x-webhook-signature': sig };
  };
  const wrongType = fc.oneof(
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
    fc.constant(''),
    fc.constant('   '),
    fc.string({ minLength: 300, maxLength: 4_000 }), // over maxLength (schema) for callId/callDomain
  );
  const huge = fc.integer({ min: 17_000, max: 200_000 }).map((n) => 'x'.repeat(n));
  const deep = fc.integer({ min: 50, max: 20_000 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d));
  const deepArray = fc.integer({ min: 50, max: 20_000 }).map((d) => '['.repeat(d) + ']'.repeat(d));
  const required = fc.constantFrom('To', 'From', 'callId', 'callDomain');
  // A missing, null, empty or blank `From` is a withheld caller ID, a real call (issue 12.6): `From`
  // is broken by its type or length only.
  const breaking = (field: string, value: unknown): unknown =>
    field === 'From' && (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) ? 42 : value;
  const validCall = () => ({
    To: NUMBER,
    From: '+15551230000',
    callId: `fz-${Math.random().toString(36).slice(2)}`,
    callDomain: 'fuzz-domain',
    sipHeaders: {},
  });

  // A call body with one required field broken (wrong type, empty, too long, or removed).
  const brokenCall = fc
    .tuple(
      required,
      fc.option(wrongType, { nil: undefined }),
      fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
    )
    .map(([field, value, extra]) => {
      const b: Record<string, unknown> = { ...extra, ...validCall() };
      const v = breaking(field, value);
      if (v === undefined) delete b[field];
      else b[field] = v;
      return Buffer.from(JSON.stringify(b));
    });
  // Duplicate keys: the last one (which JSON.parse keeps) is invalid.
  const duplicateKeys = fc.tuple(required, wrongType).map(([field, value]) => {
    const v = validCall();
    const inner = JSON.stringify(v).slice(1, -1);
    return Buffer.from(`{${inner},${JSON.stringify(field)}:${JSON.stringify(breaking(field, value) ?? 0)}}`);
  });
  const protoKeys = fc
    .tuple(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.boolean(), fc.jsonValue({ maxDepth: 2 }))
    .map(([key, nested, v]) => {
      const c = JSON.stringify({ ...validCall(), callId: 7 });
      const poison = key === 'constructor' ? `{"prototype":${JSON.stringify(v ?? 1)}}` : JSON.stringify({ polluted: v ?? 1 });
      return Buffer.from(nested ? c.replace('"sipHeaders":{}', `"sipHeaders":{"${key}":${poison}}`) : `{"${key}":${poison},${c.slice(1)}`);
    });
  const invalidUtf8 = fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.boolean()).map(([bytes, inString]) => {
    const bad = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, ...bytes]);
    if (!inString) return bad;
    const c = JSON.stringify({ ...validCall(), callDomain: 5 });
    const at = c.indexOf('"+1555');
    return Buffer.concat([Buffer.from(c.slice(0, at + 1)), bad.filter((x) => x !== 0x22 && x !== 0x5c), Buffer.from(c.slice(at + 1))]);
  });
  const randomJson = fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null'));
  const randomBytes = fc.uint8Array({ maxLength: 2_048 }).map((b) => Buffer.from(b));
  const textBodies = fc.oneof(
    { weight: 3, arbitrary: brokenCall },
    { weight: 2, arbitrary: duplicateKeys },
    { weight: 2, arbitrary: protoKeys },
    { weight: 2, arbitrary: invalidUtf8 },
    { weight: 2, arbitrary: randomJson },
    { weight: 1, arbitrary: randomBytes },
    { weight: 1, arbitrary: huge.map((s) => Buffer.from(JSON.stringify({ ...validCall(), callId: 1, pad: s }))) },
    { weight: 1, arbitrary: fc.oneof(deep, deepArray).map((s) => Buffer.from(s)) },
  );
  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'application/json; charset=utf-8',
        'application/json; charset=utf-16',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/jsonx',
        'application/octet-stream',
        '',
        ';;;',
        'application/json, text/plain',
        'APPLICATION/JSON',
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')) },
  );
  const headerJunk = fc.dictionary(
    fc.constantFrom(
      'x-pinless-timestamp',
      'x-pinless-signature',
      'x-webhook-timestamp',
      'x-webhook-signature',
      'authorization',
      'x-forwarded-for',
      'x-junk',
    ),
    fc.oneof(
      fc.string({ maxLength: 64 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
      fc.integer({ min: 33, max: 5_000 }).map((n) => 'A'.repeat(n)),
      fc.constant(['1', '2']),
    ),
    { maxKeys: 3 },
  );

  const dialin = fc
    .tuple(
      textBodies,
      contentType,
      fc.constantFrom('unsigned', 'signed', 'signed', 'junk-headers'),
      headerJunk,
      fc.integer({ min: 0, max: 6 }),
    )
    .map(([body, ct, auth, junk, chunks]): FuzzRequest => ({
      kind: `dialin-${auth}${chunks > 1 ? '-chunked' : ''}`,
      method: 'POST',
      path: '/dialin',
      headers: {
        ...(ct ? { 'content-type': ct } : {}),
        ...(auth === 'signed' ? signedHeaders(body, 'pinless') : auth === 'junk-headers' ? junk : {}),
      },
      body,
      ...(chunks > 1 ? { chunks } : {}),
    }));
  const domainEvent = fc
    .record(
      {
        version: fc.constant('1.0.0'),
        type: fc.oneof(
          fc.constantFrom('dialin.stopped', 'meeting.ended', 'dialin.error', 'participant.joined'),
          fc.string({ maxLength: 80 }),
        ),
        id: fc.string({ maxLength: 200 }),
        payload: fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 })), fc.constant(null), fc.string()),
        event_ts: fc.oneof(fc.double(), fc.string()),
      },
      { requiredKeys: [] },
    )
    .map((e) => Buffer.from(JSON.stringify(e)));
  const webhooks = fc
    .tuple(
      fc.oneof(domainEvent, textBodies),
      contentType,
      fc.constantFrom('unsigned', 'signed', 'junk-headers'),
      headerJunk,
      fc.integer({ min: 0, max: 4 }),
    )
    .map(([body, ct, auth, junk, chunks]): FuzzRequest => ({
      kind: `webhooks-${auth}${chunks > 1 ? '-chunked' : ''}`,
      method: 'POST',
      path: '/webhooks/daily',
      headers: {
        ...(ct ? { 'content-type': ct } : {}),
        ...(auth === 'signed' ? signedHeaders(body, 'webhook') : auth === 'junk-headers' ? junk : {}),
      },
      body,
      ...(chunks > 1 ? { chunks } : {}),
    }));
  const elsewhere = fc
    .tuple(
      fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'POST'),
      fc.oneof(
        fc.constantFrom(
          '/dialin',
          '/webhooks/daily',
          '/health/live',
          '/health/ready',
          '/status',
          '/metrics',
          '/calls',
          '/dashboard',
          '/ws/events',
        ),
        fc.webPath().map((p) => p || '/'),
        fc.string({ maxLength: 50 }).map((s) => '/' + encodeURIComponent(s)),
        fc.constantFrom(
          '/dialin?x=%ff',
          '/%2e%2e/%2e%2e/etc/passwd',
          '/calls?limit=-1&from=%00',
          '/calls?limit=99999999999999999999',
          '//dialin',
          '/dialin/../dialin',
        ),
      ),
      randomJson,
    )
    .map(([method, path, body]): FuzzRequest => ({
      kind: 'other-route',
      method,
      path,
      headers: { 'content-type': 'application/json' },
      ...(method === 'GET' || method === 'HEAD' ? {} : { body }),
    }));
  return fc.oneof({ weight: 6, arbitrary: dialin }, { weight: 3, arbitrary: webhooks }, { weight: 1, arbitrary: elsewhere });
}

/** Raw bytes on a fresh socket: the status line of the answer ('' when the server just closed). */
function sendRaw(base: string, bytes: Buffer): Promise<string> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const sock = net.connect(Number(u.port), u.hostname);
    let got = '';
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(got.split('\r\n')[0] ?? '');
    };
    // A request the parser still waits on (e.g. a short body) gets no answer: fine, as long as nothing breaks.
    const timer = setTimeout(done, 1_000);
    sock.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('\r\n')) done();
    });
    sock.on('error', done);
    sock.on('close', done);
    sock.end(bytes);
  });
}

/** Malformed HTTP/1.1 framing: conflicting lengths, bad chunk sizes, smuggling shapes, junk request lines. */
const rawRequests = fc
  .tuple(
    fc.constantFrom(
      (b: string) =>
        `POST /dialin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\nTransfer-Encoding: chunked\r\n\r\n${b}`,
      (b: string) =>
        `POST /dialin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${b}\r\n0\r\n\r\n`,
      (b: string) =>
        `POST /dialin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n${b}\r\n0\r\n\r\n`,
      (b: string) =>
        `POST /dialin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n${b}`,
      (b: string) => `POST /dialin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n${b}`,
      (b: string) =>
        `POST /webhooks/daily HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nContent-Type: application/json\r\n\r\n${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`,
      (b: string) =>
        `POST /dialin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n${b}GET /status HTTP/1.1\r\nHost: x\r\n\r\n`,
      (b: string) => `POST /dialin HTTP/1.1\nHost: x\nContent-Length: ${b.length}\n\n${b}`,
      (b: string) => `POST /dialin HTTP/9.9\r\nHost: x\r\n\r\n${b}`,
      (b: string) => `${b.slice(0, 30)} / HTTP/1.1\r\n\r\n`,
      (b: string) =>
        `POST /dialin HTTP/1.1\r\nHost: x\r\nX-Pinless-Signature: ${'A'.repeat(20_000)}\r\nContent-Length: ${b.length}\r\n\r\n${b}`,
      (b: string) => `POST /dialin HTTP/1.1\r\nHost: x\r\nBad Header: \x00\x01\r\nContent-Length: ${b.length}\r\n\r\n${b}`,
    ),
    fc.oneof(
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v) ?? 'null'),
      fc.string({ maxLength: 100 }),
    ),
  )
  .map(([make, body]) => Buffer.from(make(body), 'latin1'));

describe('HTTP fuzzing', () => {
  let stack: Stack;
  beforeAll(async () => {
    // A high failure limit: the fuzzer wants the real answers, not 429s (the limiter has its own tests).
    stack = await startStack({ env: { AUTH_FAILURE_LIMIT: '1000000' } });
  });
  afterAll(async () => {
    await stack?.close();
    agent.destroy();
  });

  it(`${COUNT} generated requests: no 5xx, no crash, no bot, heap flat`, { timeout: 300_000 }, async () => {
    const requests = fc.sample(arbitraries(stack.secret, stack.rt.webhookSecrets[0]!), { numRuns: COUNT, seed: SEED });
    const statuses = new Map<number, number>();
    const kinds = new Map<string, number>();
    const failures: string[] = [];
    let next = 0;
    let heapAfterWarmup = 0;
    const t0 = Date.now();
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= requests.length) return;
        const r = requests[i]!;
        if (i === 300) {
          gc();
          heapAfterWarmup = process.memoryUsage().heapUsed;
        }
        const a = await send(stack.url, r);
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
        if (a.status >= 500 || a.status === 0) {
          failures.push(
            `#${i} ${r.kind} ${r.method} ${r.path} ${JSON.stringify(r.headers).slice(0, 200)} body=${r.body?.subarray(0, 200).toString('utf8')} → ${a.status} ${a.body.slice(0, 200)}`,
          );
        }
        // An accepted call would be a bot started by junk.
        if (/"status":"accepted"/.test(a.body))
          failures.push(`#${i} ${r.kind}: accepted a call: ${r.body?.subarray(0, 300).toString('utf8')}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const elapsedMs = Date.now() - t0;
    gc();
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapAfterWarmup) / 2 ** 20;
    const summary = {
      seed: SEED,
      tried: requests.length,
      elapsedMs,
      statuses: Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])),
      kinds: Object.fromEntries(kinds),
      heapGrowthMb: Math.round(heapGrowthMb * 10) / 10,
    };
    console.info(`fuzz summary ${JSON.stringify(summary)}`);
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect([...statuses.keys()].filter((s) => s >= 500)).toEqual([]);
    // Still alive and serving.
    expect((await send(stack.url, { kind: 'probe', method: 'GET', path: '/health/live', headers: {} })).status).toBe(200);
    // No room was ever created and no bot started: the dispatcher and the emulator saw nothing.
    expect(stack.emulator.requestLog.filter((r) => r.method === 'POST' && r.path === '/rooms')).toHaveLength(0);
    expect(stack.ended).toHaveLength(0);
    expect(stack.rt.pool.stats().coldStarts + stack.rt.pool.stats().warmStarts).toBe(0);
    await expectNoLeaks({ stack });
    expect(heapGrowthMb).toBeLessThan(40);
  });

  it(
    'malformed HTTP framing on raw sockets: 4xx or a closed connection, never a 5xx, and the app keeps serving',
    { timeout: 120_000 },
    async () => {
      const raws = fc.sample(rawRequests, { numRuns: 300, seed: SEED });
      const lines = new Map<string, number>();
      for (let i = 0; i < raws.length; i += 10) {
        const answers = await Promise.all(raws.slice(i, i + 10).map((r) => sendRaw(stack.url, r)));
        for (const a of answers) {
          const key = a.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? (a === '' ? 'closed' : 'other');
          lines.set(key, (lines.get(key) ?? 0) + 1);
        }
      }
      console.info(`raw fuzz summary ${JSON.stringify({ seed: SEED, tried: raws.length, answers: Object.fromEntries(lines) })}`);
      expect([...lines.keys()].filter((k) => /^5/.test(k) || k === 'other')).toEqual([]);
      expect((await send(stack.url, { kind: 'probe', method: 'GET', path: '/health/live', headers: {} })).status).toBe(200);
      expect(stack.emulator.requestLog.filter((r) => r.method === 'POST' && r.path === '/rooms')).toHaveLength(0);
      await expectNoLeaks({ stack });
    },
  );
});
