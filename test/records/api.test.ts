/**
 * GET /calls (filters, cursor paging, CSV / JSON export with escaping and formula neutralisation)
 * and GET /calls/:id (a live call's record and event log as it happens, then its end), on the
 * real app with the real emulator and workers.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../../src/daily/signature.js';
import { csvField } from '../../src/records/csv.js';
import type { RecordInput } from '../../src/records/types.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

/** RFC 4180 parser (quoted fields with commas, quotes, CR/LF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += ch;
  }
  if (field || row.length) rows.push([...row, field]);
  return rows;
}

const get = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, text: await res.text() };
};

const HOOK_SECRET = randomBytes(32).toString('base64');

describe('GET /calls and GET /calls/:id', () => {
  let stack: Stack;
  const t0 = Date.parse('2026-11-20T09:00:00Z');

  beforeAll(async () => {
    stack = await startStack({ env: { CALL_RECORDS_PATH: ':memory:', DAILY_WEBHOOK_HMAC: HOOK_SECRET } });
    const base = (i: number, over: Partial<RecordInput> = {}): RecordInput => ({
      id: `api-${i}`,
      callId: `daily-${i}`,
      callDomain: 'dom',
      from: `+1555123${4000 + i}`,
      to: NUMBER,
      bot: i % 2 ? 'ivr-menu' : 'default',
      roomName: `room-${i}`,
      state: 'ended',
      outcome: i % 3 ? 'completed' : 'caller_hangup',
      timeline: { received: t0 + i * 60_000, ended: t0 + i * 60_000 + 2_000 },
      ...over,
    });
    for (let i = 0; i < 8; i++) stack.rt.records!.close(base(i));
    stack.rt.records!.close(
      base(8, {
        detail: 'Smith, "Jo"\nsecond line',
        events: [
          { kind: 'say', value: '=HYPERLINK("http://evil.example","click")', atMs: t0 },
          { kind: 'say', value: '+SUM(A1)', atMs: t0 + 1 },
        ],
        bot: '@bot,with "quotes"',
      }),
    );
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('filters by number (last digits), bot, outcome and time range, and pages with nextCursor', async () => {
    const ids = async (q: string) =>
      JSON.parse((await get(`${stack.url}/calls?${q}`)).text) as { calls: Array<{ id: string }>; nextCursor: string | null };
    expect((await ids('number=4003')).calls.map((c) => c.id)).toEqual(['api-3']);
    // More digits than a masked number keeps: matched on the last 4.
    expect((await ids('number=15551234003')).calls.map((c) => c.id)).toEqual(['api-3']);
    expect((await ids('bot=ivr-menu')).calls.map((c) => c.id)).toEqual(['api-7', 'api-5', 'api-3', 'api-1']);
    expect((await ids('outcome=caller_hangup')).calls.map((c) => c.id)).toEqual(['api-6', 'api-3', 'api-0']);
    expect((await ids('from=2026-11-20T09:02:00Z&to=2026-11-20T09:05:00Z')).calls.map((c) => c.id)).toEqual(['api-4', 'api-3', 'api-2']);
    const p1 = await ids('limit=4');
    expect(p1.calls.map((c) => c.id)).toEqual(['api-8', 'api-7', 'api-6', 'api-5']);
    expect(p1.nextCursor).toMatch(/^\d+$/);
    const p2 = await ids(`limit=4&cursor=${p1.nextCursor}`);
    expect(p2.calls.map((c) => c.id)).toEqual(['api-4', 'api-3', 'api-2', 'api-1']);
    const p3 = await ids(`limit=4&cursor=${p2.nextCursor}`);
    expect(p3.calls.map((c) => c.id)).toEqual(['api-0']);
    expect(p3.nextCursor).toBeNull();
  });

  it.each([
    ['from=yesterday', /from must be an ISO 8601 time/],
    ['to=2026-13-45T99:00:00Z', /to must be an ISO 8601 time/],
    ['number=12ab', /number/],
    ['format=xlsx', /format/],
    ['cursor=0', /positive integer/],
    ['outcome=nope', /outcome must be one of: .*replica_lost, interrupted/],
  ])('refuses %s with 400', async (q, message) => {
    const r = await get(`${stack.url}/calls?${q}`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text)).toMatchObject({ error: 'invalid_query', message: expect.stringMatching(message) });
  });

  it('exports the current filter as CSV: commas, quotes and newlines quoted, formulas neutralised', async () => {
    const r = await get(`${stack.url}/calls?format=csv&from=2026-11-20T09:03:00Z`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(r.headers.get('content-disposition')).toMatch(/^attachment; filename="calls-.*\.csv"$/);
    const rows = parseCsv(r.text);
    const header = rows[0]!;
    expect(header.slice(0, 6)).toEqual(['id', 'callId', 'callDomain', 'from', 'to', 'bot']);
    expect(rows.slice(1).map((x) => x[0])).toEqual(['api-8', 'api-7', 'api-6', 'api-5', 'api-4', 'api-3']);
    const row = Object.fromEntries(header.map((h, i) => [h, rows[1]![i]]));
    expect(row.detail).toBe('Smith, "Jo"\nsecond line');
    // A value a spreadsheet would run ('=', '+', '-', '@' first) is text.
    expect(row.bot).toBe(`'@bot,with "quotes"`);
    expect(row.from).toBe('********4008');
    const events = JSON.parse(row.events!) as Array<{ value: string }>;
    expect(events.map((e) => e.value)).toEqual(['=HYPERLINK("http://evil.example","click")', '+SUM(A1)']);
    // No field of the file starts with a formula character.
    for (const x of rows.slice(1)) for (const f of x) expect(f).not.toMatch(/^[=+\-@\t\r]/);
    expect(csvField("=cmd|' /C calc'!A0")).toBe("'=cmd|' /C calc'!A0");
    expect(csvField('-2+3')).toBe("'-2+3");
    expect(csvField('\tx')).toBe("'\tx");
    expect(csvField('\rx')).toBe(`"'\rx"`);
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField(null)).toBe('');
  });

  it('exports JSON, and 404s an unknown id / 400s a bad one', async () => {
    const r = await get(`${stack.url}/calls?format=json&bot=default`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect((JSON.parse(r.text) as { calls: Array<{ id: string }> }).calls.map((c) => c.id)).toEqual(['api-6', 'api-4', 'api-2', 'api-0']);
    expect((await get(`${stack.url}/calls/nope`)).status).toBe(404);
    expect((await get(`${stack.url}/calls/${encodeURIComponent('a b<c>')}`)).status).toBe(400);
  });

  it('a live call: its record exists from admission and its event log grows while it lasts', async () => {
    const call = stack.emulator.placeCall({
      to: NUMBER,
      from: '+15557654321',
      script: [{ waitFor: 'say', match: 'Hello' }, { wait: 1_500 }, { hangup: true }],
    });
    let id: string | undefined;
    await expect
      .poll(
        async () => {
          const body = JSON.parse((await get(`${stack.url}/calls?number=4321`)).text) as {
            calls: Array<{ id: string; callId: string; endedAtMs: number | null }>;
          };
          const mine = body.calls.find((c) => c.callId === call.callId);
          id = mine?.id;
          return mine?.endedAtMs;
        },
        { timeout: 20_000, interval: 100 },
      )
      .toBeNull();
    await expect
      .poll(
        async () => {
          const b = JSON.parse((await get(`${stack.url}/calls/${id}`)).text) as {
            live: boolean;
            call: { events: Array<{ kind: string; value: string }> };
          };
          return b.live && b.call.events.some((e) => e.kind === 'say' && /Hello/.test(e.value));
        },
        { timeout: 20_000, interval: 100 },
      )
      .toBe(true);
    // Daily reports a dial-in error (domain webhook): it joins the call's event log, numbers masked.
    const body = JSON.stringify({
      version: '1.0.0',
      type: 'dialin.error',
      id: randomUUID(),
      event_ts: Date.now() / 1000,
      payload: {
        room: `${stack.rt.dispatcher.get(id!)!.roomName}`,
        session_id: randomUUID(),
        error_msg: 'SIP 486 from +15551112222',
        timestamp: 1,
      },
    });
    const ts = String(Math.floor(Date.now() / 1000));
    const hook = await fetch(`${stack.url}/webhooks/daily`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-webhook-timestamp': ts, 'x-webhook-signature': signWebhook(body, HOOK_SECRET, ts) },
    });
    expect(hook.status).toBe(200);
    await call.ended;
    await expect
      .poll(
        async () => (JSON.parse((await get(`${stack.url}/calls/${id}`)).text) as { live: boolean; call: { outcome: string } }).call.outcome,
        { timeout: 20_000 },
      )
      .toBe('caller_hangup');
    const log = (JSON.parse((await get(`${stack.url}/calls/${id}`)).text) as { call: { events: Array<{ kind: string; value: string }> } })
      .call.events;
    expect(log.filter((e) => e.kind === 'dialin_error').map((e) => e.value)).toEqual(['SIP ••• from ********2222']);
    // The outcome is known first; the call is over (not live) once its room is released, a moment later.
    await expect
      .poll(async () => (JSON.parse((await get(`${stack.url}/calls/${id}`)).text) as { live: boolean }).live, { timeout: 10_000 })
      .toBe(false);
    const done = JSON.parse((await get(`${stack.url}/calls/${id}`)).text) as {
      live: boolean;
      call: { from: string; timeline: Record<string, number> };
    };
    expect(done.live).toBe(false);
    expect(done.call.from).toBe('********4321');
    for (const s of ['received', 'queued', 'worker_assigned', 'connected', 'ended'])
      expect(done.call.timeline[s]).toEqual(expect.any(Number));
  }, 60_000);
});
