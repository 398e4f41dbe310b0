/**
 * The provisioning CLI as a real child process (`node bin/patchbay.mjs …`) against a real
 * emulator (inside a real stack, whose domain events make a webhook fail for the reactivate case).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PinlessDialinEntry } from '../../src/emulator/types.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const LAUNCHER = fileURLToPath(new URL('../../bin/patchbay.mjs', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let stack: Stack;
// Every CLI run is a fresh Node process compiling TypeScript: allow for a loaded machine.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

function cli(args: string[], opts: { apiKey?: string } = {}): Promise<Run> {
  // A clean environment: nothing from the developer's shell (DAILY_API_KEY!) leaks in.
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [LAUNCHER, '--api-url', stack.emulator.apiUrl, '--api-key', opts.apiKey ?? stack.apiKey, ...args],
      { env, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 99) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

const byKey = (entries: PinlessDialinEntry[]) => Object.fromEntries(entries.map((e) => [e.phone_number ?? e.sip_uri!, e] as const));

/** An HTTP receiver for webhooks: 200 to verification requests, `eventStatus` to events. */
async function receiver(): Promise<{ url: string; eventStatus: number; events: number; close(): Promise<unknown> }> {
  const rx = {
    url: '',
    eventStatus: 200,
    events: 0,
    close: () => new Promise((r) => server.close(r)),
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const j = JSON.parse(body) as { test?: unknown };
      if (j.test !== undefined) return void res.writeHead(200).end();
      rx.events++;
      res.writeHead(rx.eventStatus).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  rx.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return rx;
}

const HMAC_A = randomBytes(32).toString('base64');
const SIP_URI = 'sip:1234567890@emulator.sip.daily.co';

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => stack?.close());

describe('patchbay dialin', () => {
  beforeAll(() => {
    // The stack's own number plus two more: a phone number with a secret and a SIP interconnect.
    const own = stack.emulator.getPinlessDialin();
    stack.emulator.setPinlessDialin([
      ...own,
      {
        phone_number: '+15550007000',
        room_creation_api: 'https://a.example.com/dialin',
        hmac: HMAC_A,
        hold_music_url: 'https://a.example.com/hold.mp3',
      },
      { sip_uri: SIP_URI, room_creation_api: 'https://b.example.com/dialin' },
    ]);
  });

  it('list shows every entry, secrets masked', async () => {
    const r = await cli(['dialin', 'list']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(NUMBER);
    expect(r.stdout).toContain('+15550007000');
    expect(r.stdout).toContain(SIP_URI);
    expect(r.stdout).toContain('https://a.example.com/dialin');
    expect(r.stdout).not.toContain(HMAC_A);
    const json = await cli(['--json', 'dialin', 'list']);
    const parsed = JSON.parse(json.stdout) as Array<{ id: string; hmac?: string }>;
    expect(parsed).toHaveLength(3);
    expect(parsed.every((e) => typeof e.id === 'string')).toBe(true);
    expect(json.stdout).not.toContain(HMAC_A);
  });

  it('--dry-run prints the diff and changes nothing', async () => {
    const before = stack.emulator.getPinlessDialin();
    const r = await cli(['dialin', 'set', '+15550008000', '--room-creation-api', 'https://c.example.com/dialin', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('+ +15550008000');
    expect(r.stdout).toContain('room_creation_api: https://c.example.com/dialin');
    expect(r.stdout).toContain('= 3 other entries unchanged');
    expect(r.stdout).toContain('dry run: nothing written');
    const rm = await cli(['dialin', 'remove', '+15550007000', '--dry-run']);
    expect(rm.stdout).toContain('- +15550007000');
    expect(stack.emulator.getPinlessDialin()).toEqual(before);
  });

  it('set adds an entry and keeps every other one exactly as it was', async () => {
    const before = byKey(stack.emulator.getPinlessDialin());
    const r = await cli([
      'dialin',
      'set',
      '+15550008000',
      '--room-creation-api',
      'https://c.example.com/dialin',
      '--timeout-message',
      'All bots are busy',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('added');
    const after = byKey(stack.emulator.getPinlessDialin());
    expect(Object.keys(after).sort()).toEqual([...Object.keys(before), '+15550008000'].sort());
    for (const k of Object.keys(before)) expect(after[k]).toEqual(before[k]);
    expect(after['+15550008000']).toMatchObject({
      room_creation_api: 'https://c.example.com/dialin',
      timeout_config: { message: 'All bots are busy' },
    });
  });

  it('set on an existing entry changes only the fields given (and shows them)', async () => {
    const before = byKey(stack.emulator.getPinlessDialin());
    const r = await cli(['dialin', 'set', '+15550007000', '--timeout-message', 'Call back later']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('~ +15550007000');
    expect(r.stdout).toContain('timeout_config: (unset) → {"message":"Call back later"}');
    const after = byKey(stack.emulator.getPinlessDialin());
    expect(after['+15550007000']).toEqual({ ...before['+15550007000'], timeout_config: { message: 'Call back later' } });
    for (const k of Object.keys(before).filter((k) => k !== '+15550007000')) expect(after[k]).toEqual(before[k]);
  });

  it('--legacy writes the whole pinless_dialin array without dropping others; --generate-hmac prints the secret once', async () => {
    const before = byKey(stack.emulator.getPinlessDialin());
    const r = await cli(['dialin', 'set', SIP_URI, '--legacy', '--generate-hmac']);
    expect(r.code).toBe(0);
    const m = /DAILY_PINLESS_HMAC=(\S+)/.exec(r.stdout);
    expect(m).not.toBeNull();
    const after = byKey(stack.emulator.getPinlessDialin());
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    expect(after[SIP_URI]).toEqual({ ...before[SIP_URI], hmac: m![1] });
    for (const k of Object.keys(before).filter((k) => k !== SIP_URI)) expect(after[k]).toEqual(before[k]);
    // Printed once: the list never shows it.
    expect((await cli(['dialin', 'list'])).stdout).not.toContain(m![1]!);
  });

  it('remove deletes one entry and nothing else', async () => {
    const before = byKey(stack.emulator.getPinlessDialin());
    const r = await cli(['dialin', 'remove', '+15550008000']);
    expect(r.code).toBe(0);
    const after = byKey(stack.emulator.getPinlessDialin());
    const { ['+15550008000']: gone, ...rest } = before;
    expect(gone).toBeDefined();
    expect(after).toEqual(rest);
    const again = await cli(['dialin', 'remove', '+15550008000']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('no pinless dial-in entry for +15550008000');
  });

  it('Daily errors are shown as {error, info} with the HTTP status; usage errors exit 2', async () => {
    // Daily refusing the write (the emulator's fault injection answers like Daily does).
    const before = stack.emulator.getPinlessDialin();
    stack.emulator.faults.inject({ method: 'POST', path: '/domain-dialin-config', status: 400 });
    const bad = await cli(['dialin', 'set', '+15550009000', '--room-creation-api', 'https://x.example.com/']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Daily API error: HTTP 400');
    const body = JSON.parse(bad.stderr.split('\n')[1]!) as { error: string; info: string };
    expect(body.error).toBe('invalid-request-error');
    expect(typeof body.info).toBe('string');
    expect(stack.emulator.getPinlessDialin()).toEqual(before);
    const auth = await cli(['dialin', 'list'], { apiKey: 'wrong-key-123' });
    expect(auth.code).toBe(1);
    expect(auth.stderr).toContain('HTTP 401');
    expect(auth.stderr).toContain('"error":"authentication-error"');
    const usage = await cli(['dialin', 'set', '+15550009000', '--room-creation-api', 'ftp://nope']);
    expect(usage.code).toBe(2);
  });
});

describe('patchbay webhooks', () => {
  it('create (secret printed once), list (state, failedCount), reactivate a FAILED one, delete', { timeout: 90_000 }, async () => {
    const rx = await receiver();
    try {
      const created = await cli([
        'webhooks',
        'create',
        '--url',
        rx.url,
        '--retry-type',
        'circuit-breaker',
        '--event-types',
        'participant.joined,participant.left,dialin.ready,dialin.connected,dialin.stopped,meeting.ended',
      ]);
      expect(created.code).toBe(0);
      const uuid = /^([0-9a-f-]{36})\s+ACTIVE\s+failedCount=0/m.exec(created.stdout)?.[1];
      expect(uuid).toBeDefined();
      const secret = /DAILY_WEBHOOK_HMAC=(\S+)/.exec(created.stdout)?.[1];
      expect(secret).toBeDefined();
      const stored = (await (
        await fetch(`${stack.emulator.apiUrl}/webhooks/${uuid}`, { headers: { authorization: `Bearer ${stack.apiKey}` } })
      ).json()) as { hmac: string };
      expect(stored.hmac).toBe(secret);

      const listed = await cli(['webhooks', 'list']);
      expect(listed.stdout).toMatch(new RegExp(`${uuid}\\s+ACTIVE\\s+failedCount=0`));
      expect(listed.stdout).not.toContain(secret!);

      // The receiver starts refusing events; a real call's events trip the circuit breaker.
      rx.eventStatus = 500;
      const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
      await stack.waitEnded(call.callId);
      for (let i = 0; i < 200; i++) {
        const h = (await (
          await fetch(`${stack.emulator.apiUrl}/webhooks/${uuid}`, { headers: { authorization: `Bearer ${stack.apiKey}` } })
        ).json()) as { state: string };
        if (h.state === 'FAILED') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const failed = (await cli(['webhooks', 'list'])).stdout;
      expect(failed).toMatch(new RegExp(`${uuid}\\s+FAILED\\s+failedCount=3`));
      expect(failed).toContain(`patchbay webhooks reactivate ${uuid}`);

      rx.eventStatus = 200;
      const re = await cli(['webhooks', 'reactivate', uuid!]);
      expect(re.code).toBe(0);
      expect(re.stdout).toMatch(new RegExp(`${uuid}\\s+ACTIVE\\s+failedCount=0`));

      const del = await cli(['webhooks', 'delete', uuid!]);
      expect(del.code).toBe(0);
      expect((await cli(['webhooks', 'list'])).stdout).not.toContain(uuid!);
      const again = await cli(['webhooks', 'delete', uuid!]);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('HTTP 404');
      expect(again.stderr).toContain('"error":"not-found"');
    } finally {
      await rx.close();
    }
  });

  it('create fails with Daily’s 400 when the URL does not answer the verification request with 200', async () => {
    const r = await cli(['webhooks', 'create', '--url', `${stack.url}/no-such-route`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Daily API error: HTTP 400');
    const body = JSON.parse(r.stderr.split('\n')[1]!) as { error: string; info: string };
    expect(body).toMatchObject({ error: 'invalid-request-error' });
    expect(body.info).toContain('404');
  });

  it('create against the service: its /webhooks/daily passes the verification; --basic-auth is echoed as an env hint', async () => {
    const r = await cli(['webhooks', 'create', '--url', `${stack.url}/webhooks/daily`, '--generate-basic-auth']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/DAILY_WEBHOOK_BASIC_AUTH=daily:\S+/);
    expect(r.stdout).toMatch(/DAILY_WEBHOOK_HMAC=\S+/);
    const uuid = /^([0-9a-f-]{36})\s+ACTIVE/m.exec(r.stdout)![1]!;
    expect((await cli(['webhooks', 'delete', uuid])).code).toBe(0);
  });
});

describe('patchbay start', () => {
  // Starting for real (the installed package answering a call with the user's bot) is in
  // test/package.test.ts; here: options that cannot work stop it at once, with a usage error.
  it('a --bots directory or --routes file that does not exist is a usage error (exit 2), nothing starts', async () => {
    const noDir = await cli(['start', '--bots', '/nonexistent/my-bots']);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toContain('--bots /nonexistent/my-bots: no such directory');
    const noRoutes = await cli([
      'start',
      '--bots',
      fileURLToPath(new URL('../../bots/', import.meta.url)),
      '--routes',
      '/nonexistent/routes.json',
    ]);
    expect(noRoutes.code).toBe(2);
    expect(noRoutes.stderr).toContain('--routes /nonexistent/routes.json: no such file');
    const badPort = await cli(['start', '--port', 'eighty']);
    expect(badPort.code).toBe(2);
    expect(noDir.stdout + noRoutes.stdout + badPort.stdout).not.toContain('patchbay listening');
  });
});
