import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import type { PinlessCall } from '../../src/daily/types.js';
import { createRouter, loadRoutes, normalizeTarget, parseRoutes, RoutesError, routeResult } from '../../src/admission/router.js';
import { createLogger } from '../../src/core/logger.js';
import { createRuntime } from '../../src/app/runtime.js';
import { startStack, type Stack } from '../helpers/stack.js';

const BOTS = path.resolve(import.meta.dirname, '../../bots');
const call = (to: string, sipHeaders: Record<string, string> = {}): PinlessCall => ({
  to,
  from: '+15551112222',
  callId: 'c1',
  callDomain: 'd1',
  sipHeaders,
});
const tmp = mkdtempSync(path.join(tmpdir(), 'pb-routes-'));
const writeRoutes = (name: string, body: unknown) => {
  const f = path.join(tmp, name);
  writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body));
  return f;
};

describe('routing rules', () => {
  const spec = parseRoutes(
    {
      default: 'default',
      routes: [
        { to: '+1 (555) 000-1002', bot: 'ivr-menu', config: { salesUri: 'sip:a@b' } },
        { to: ['sip:Pin@Example.sip.daily.co;transport=tls', '+15550001003'], bot: 'pin-check' },
        { sipHeaders: { 'X-Tenant': 'acme', 'x-lang': 'en' }, bot: 'greeter' },
        { botFromHeader: 'x-bot', allow: ['greeter', 'voice-assistant'] },
      ],
      bots: { 'ivr-menu': { salesUri: 'sip:default@b', supportUri: 'sip:s@b' } },
    },
    'test',
  );
  const route = createRouter(spec, 'unused');

  it('matches the called number, normalised', () => {
    expect(route(call('+15550001002'))).toEqual({ bot: 'ivr-menu', config: { salesUri: 'sip:a@b', supportUri: 'sip:s@b' } });
    expect(routeResult(route(call('+15550001003'))).bot).toBe('pin-check');
  });

  it('matches SIP URIs without scheme, case or parameters', () => {
    expect(routeResult(route(call('sip:pin@example.sip.daily.co'))).bot).toBe('pin-check');
    expect(normalizeTarget('<sips:Bot@HOST;x=1?y=2>')).toBe('bot@host');
    expect(normalizeTarget('tel:+1-555-000-1000')).toBe('+15550001000');
  });

  it('matches SIP headers case-insensitively, all of them', () => {
    expect(routeResult(route(call('+19990000000', { 'x-tenant': 'acme', 'X-LANG': 'en' }))).bot).toBe('greeter');
    expect(routeResult(route(call('+19990000000', { 'x-tenant': 'acme' }))).bot).toBe('default');
    expect(routeResult(route(call('+19990000000', { 'x-tenant': 'other', 'x-lang': 'en' }))).bot).toBe('default');
  });

  it('takes the bot from a header only among the allowed ones', () => {
    expect(routeResult(route(call('+19990000000', { 'X-Bot': 'voice-assistant' }))).bot).toBe('voice-assistant');
    expect(routeResult(route(call('+19990000000', { 'x-bot': 'pin-check' }))).bot).toBe('default');
    expect(routeResult(route(call('+19990000000', { 'x-bot': '../../etc/passwd' }))).bot).toBe('default');
  });

  it('falls back to the default, with its settings', () => {
    expect(route(call('+19990000000'))).toEqual({ bot: 'default' });
    expect(createRouter({}, 'fallback')(call('+1'))).toEqual({ bot: 'fallback' });
  });
});

describe('routing file validation', () => {
  it.each([
    [{ routes: [{ to: '+1', bot: '../evil' }] }, /routes\.0\.bot|routes\.0/],
    [{ routes: [{ to: '+1', bot: 'x', colour: 'red' }] }, /routes\.0/],
    [{ default: 'ok', extra: 1 }, /top level|extra/],
    [{ routes: [{ bot: 'greeter' }] }, /routes\[0\] \(bot "greeter"\) has no condition/],
    [{ routes: [{ botFromHeader: 'x-bot', allow: [] }] }, /routes\.0/],
  ])('refuses %j', (body, message) => {
    expect(() => parseRoutes(body, 'routes.json')).toThrow(RoutesError);
    expect(() => parseRoutes(body, 'routes.json')).toThrow(message);
  });

  it('the routing file shipped in bots/ is valid and names only existing bots', () => {
    const r = loadRoutes({ botsDir: BOTS, defaultBot: 'default' });
    expect(r.file).toBe(path.join(BOTS, 'routes.json'));
    expect(r.bots.sort()).toEqual(['default', 'greeter', 'ivr-menu', 'pin-check', 'voice-assistant']);
  });

  it('an unknown bot is an error naming it', () => {
    const f = writeRoutes('unknown.json', { routes: [{ to: '+1', bot: 'greter' }] });
    expect(() => loadRoutes({ botsDir: BOTS, defaultBot: 'default', routesFile: f })).toThrow(/unknown bot "greter"/);
    const g = writeRoutes('unknown-allow.json', { routes: [{ botFromHeader: 'x-bot', allow: ['greeter', 'nope'] }] });
    expect(() => loadRoutes({ botsDir: BOTS, defaultBot: 'default', routesFile: g })).toThrow(/unknown bot "nope"/);
    // Without a routing file, DEFAULT_BOT must exist.
    expect(() => loadRoutes({ botsDir: tmp, defaultBot: 'missing-default' })).toThrow(/unknown bot "missing-default"/);
  });

  it('broken JSON and a missing ROUTES_FILE are errors naming the file', () => {
    const f = writeRoutes('broken.json', '{ "default": ');
    expect(() => loadRoutes({ botsDir: BOTS, defaultBot: 'default', routesFile: f })).toThrow(`${f}: not valid JSON`);
    expect(() => loadRoutes({ botsDir: BOTS, defaultBot: 'default', routesFile: path.join(tmp, 'nope.json') })).toThrow(
      /ROUTES_FILE .*nope\.json does not exist/,
    );
  });

  it('the service refuses to start with an unknown bot in its routes', async () => {
    const f = writeRoutes('start.json', { default: 'default', routes: [{ to: '+15550009999', bot: 'no-such-bot' }] });
    const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', ROUTES_FILE: f, BOTS_DIR: BOTS, IDLE_WORKERS: '0' });
    await expect(createRuntime(config, createLogger({ level: 'silent' }))).rejects.toThrow(/unknown bot "no-such-bot"/);
  });
});

describe('routing on real calls', () => {
  let stack: Stack;
  beforeAll(async () => {
    const f = writeRoutes('live.json', {
      default: 'greeter',
      routes: [
        { to: '+15550001003', bot: 'pin-check', config: { pin: '99' } },
        { botFromHeader: 'x-bot', allow: ['ivr-menu'] },
      ],
    });
    stack = await startStack({
      env: { BOTS_DIR: BOTS, ROUTES_FILE: f, EMULATOR_NUMBERS: '+15550001000,+15550001003', TTS_PROVIDER: 'text' },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('routes by number (with the route config), by header, and to the default', async () => {
    const pin = stack.emulator.placeCall({
      to: '+15550001003',
      script: [{ waitFor: 'say', match: 'PIN' }, { press: '99#' }, { waitFor: 'say', match: 'accepted' }],
    });
    const menu = stack.emulator.placeCall({
      to: '+15550001000',
      sipHeaders: { 'X-Bot': 'ivr-menu' },
      script: [{ waitFor: 'say', match: 'Press 1' }, { hangup: true }],
    });
    const greet = stack.emulator.placeCall({ to: '+15550001000', script: [{ waitFor: 'say', match: 'You called' }, { hangup: true }] });
    const [p, m, g] = await Promise.all([
      stack.waitEnded(pin.callId, 40_000),
      stack.waitEnded(menu.callId, 40_000),
      stack.waitEnded(greet.callId, 40_000),
    ]);
    expect(p.bot).toBe('pin-check');
    expect(p.outcome).toBe('completed');
    expect(p.botEvents.filter((e) => e.kind === 'digits').map((e) => e.value)).toEqual(['99']);
    expect(m.bot).toBe('ivr-menu');
    expect(g.bot).toBe('greeter');
  }, 60_000);
});
