/**
 * The worker's own Daily request (pinlessCallUpdate, sent from the worker process) waits for the
 * parent's rate limiter like every other request: with a tight `default` window on both sides
 * (the emulator refuses like Daily, DAILY_RATE_LIMITS keeps to it), a burst of calls is paced and
 * no request of the call path is refused with a 429.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildMessage } from '../../src/workers/protocol.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const CALLS = 4;
const PER_WINDOW = 3;
const WINDOW_MS = 1_500;

describe('the worker’s pinlessCallUpdate behind the parent’s rate limiter', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      env: {
        MAX_CONCURRENT_BOTS: String(CALLS),
        IDLE_WORKERS: String(CALLS),
        DAILY_TOKEN_MODE: 'self-signed',
        DAILY_RATE_LIMITS: `default=${PER_WINDOW}/${WINDOW_MS}/0`,
        // Paced by the window: the update may wait a few windows for its grant.
        PINLESS_UPDATE_DEADLINE_MS: '15000',
        DIALIN_READY_TIMEOUT_MS: '15000',
      },
      emulator: { holdTimeoutMs: 60_000, rateLimits: { classes: { default: [{ requests: PER_WINDOW, windowMs: WINDOW_MS }] } } },
    });
    // Every worker up before the burst (a worker's own start-up sends nothing to Daily).
    const t0 = Date.now();
    while (stack.rt.pool.stats().idle < CALLS && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it(`${CALLS} calls at once on a ${PER_WINDOW}-per-${WINDOW_MS} ms window: all connected, no 429, updates paced with the rooms`, async () => {
    const t0 = Date.now();
    const calls = Array.from({ length: CALLS }, () =>
      stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 30_000 }, { hangup: true }] }),
    );
    const ends = await Promise.all(calls.map((c) => c.ended));
    expect(ends.map((e) => e.reason)).toEqual(calls.map(() => 'caller_hangup'));
    const log = stack.emulator.requestLog.filter((r) => r.atMs >= t0 && !(r.method === 'DELETE' && r.path.startsWith('/rooms/')));
    expect(log.filter((r) => r.status === 429)).toEqual([]);
    const updates = log.filter((r) => r.path === '/dialin/pinlessCallUpdate');
    expect(updates).toHaveLength(CALLS);
    // 2 × CALLS requests (room, update) at PER_WINDOW per window: the last one waited ≥ 2 windows.
    const sent = log.map((r) => r.atMs).sort((a, b) => a - b);
    expect(sent.length).toBeGreaterThanOrEqual(2 * CALLS);
    expect(sent.at(-1)! - sent[0]!).toBeGreaterThanOrEqual(2 * WINDOW_MS - 100);
  }, 90_000);

  it('the update’s grant is asked for once the bot has joined, before dialin-ready (no IPC round trip after it, issue 27)', async () => {
    const seen: string[] = [];
    for (const w of stack.rt.pool.all()) {
      w.on('message', (m: ChildMessage) => {
        if (m.type === 'rate' && m.path === '/dialin/pinlessCallUpdate') seen.push('rate:update');
        if (m.type === 'stage' && (m.stage === 'joined' || m.stage === 'dialin_ready' || m.stage === 'forward_sent')) seen.push(m.stage);
      });
    }
    const call = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'connected', timeoutMs: 30_000 }, { hangup: true }] });
    expect((await call.ended).reason).toBe('caller_hangup');
    // Exactly one grant asked for the update (the held one is used, not a second), between join and dialin-ready.
    expect(seen).toEqual(['joined', 'rate:update', 'dialin_ready', 'forward_sent']);
  }, 60_000);
});
