/**
 * The real server process (its stdout is the log): a bot's runtime error and a bot's syntax error each
 * give an outcome and log lines that name the bot's file (and line).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_BOTS, startServerProcess, type LogLine, type ServerProcess } from '../helpers/ops.js';

describe('bot errors in the service log', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    const routes = path.join(mkdtempSync(path.join(tmpdir(), 'pb-logs-')), 'routes.json');
    writeFileSync(routes, JSON.stringify({ default: 'throws-in-oncall', routes: [{ botFromHeader: 'x-bot', allow: ['broken-syntax'] }] }));
    server = await startServerProcess({ BOTS_DIR: FIXTURE_BOTS, ROUTES_FILE: routes, IDLE_WORKERS: '1', TTS_PROVIDER: 'text' });
  }, 40_000);
  afterAll(async () => {
    await server?.kill();
  });

  const place = async (body: Record<string, unknown>): Promise<string> => {
    const res = await fetch(`${server.emulator}/_emulator/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBeLessThan(300);
    return ((await res.json()) as { callId: string }).callId;
  };
  const ended = (callId: string) => server.waitLine((l: LogLine) => l.msg === 'call ended' && l.callId === callId, 30_000);

  it('a handler that throws: outcome bot_error, the worker logs the file and line', async () => {
    const callId = await place({ to: '+15550001000', script: [{ waitFor: 'say', match: 'about to fail', timeoutMs: 20_000 }] });
    const end = await ended(callId);
    expect(end.outcome).toBe('bot_error');
    expect(String(end.detail)).toMatch(/throws-in-oncall\.ts:9:\d+\)$/);
    const botError = await server.waitLine((l) => l.msg === 'bot error' && l.callId === callId, 5_000);
    expect(botError.botFile).toBe(path.join(FIXTURE_BOTS, 'throws-in-oncall.ts'));
    expect(String(botError.at)).toMatch(/throws-in-oncall\.ts:9:\d+$/);
    expect(botError.bot).toBe('throws-in-oncall');
    expect(typeof botError.pid).toBe('number');
  }, 40_000);

  it('a bot with a syntax error: outcome bot_load_failed, the log names the file and line', async () => {
    const callId = await place({
      to: '+15550001000',
      sipHeaders: { 'x-bot': 'broken-syntax' },
      script: [{ wait: 20_000 }, { hangup: true }],
    });
    const end = await ended(callId);
    expect(end.outcome).toBe('bot_load_failed');
    expect(end.bot).toBe('broken-syntax');
    expect(String(end.detail)).toContain(`${path.join(FIXTURE_BOTS, 'broken-syntax.js')}:8`);
  }, 40_000);
});
