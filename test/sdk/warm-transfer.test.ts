import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBotHarness, type BotHarness } from '../../src/testing/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const warm = path.join(here, '../fixtures/bots/warm.ts');
const AGENT = 'sip:sales@pbx.example.com';
/** The briefing's play-out (the emulator times spoken text): the agent speaks once it is over. */
const BRIEF_MS = 5_000;
const lines = (t: Array<{ who: string; text: string }>, who: string) => t.filter((l) => l.who === who).map((l) => l.text);

describe('warm transfer (emulator dial-out)', () => {
  let h: BotHarness;
  beforeAll(async () => {
    h = await createBotHarness({ firstBot: warm, env: { DAILY_DIALOUT: 'true' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('briefs the agent out of the caller’s hearing, then puts them through; ends when the agent hangs up', async () => {
    const r = await h.run(warm, {
      config: { agent: AGENT },
      agents: {
        [AGENT]: {
          answerAfterMs: 300,
          script: [
            { waitFor: 'say', match: /account 42/ },
            { wait: BRIEF_MS },
            { say: 'Hi, this is Sam from sales.' },
            { waitFor: 'peer', match: /thanks Sam/ },
            { hangup: true },
          ],
        },
      },
      caller: [{ waitFor: 'say', match: /hold/ }, { waitFor: 'peer', match: /Sam/, timeoutMs: 20_000 }, { say: 'thanks Sam' }],
    });
    expect(r.outcome).toBe('completed');
    expect(r.detail).toMatch(/warm transfer to sip:sales@pbx\.example\.com: bridged \d+ s; the agent hung up/);
    expect(r.warmTransfer).toEqual({ target: AGENT, bridged: true });
    // The caller heard the bot and the agent, never the briefing.
    expect(lines(r.transcript, 'bot')).toEqual(['Hello, let me connect you to sales.', 'Please hold while I connect you.']);
    expect(lines(r.transcript, 'peer')).toEqual(['Hi, this is Sam from sales.']);
    // The agent heard the briefing and then the caller.
    expect(r.agents).toHaveLength(1);
    const agent = r.agents[0]!;
    expect(agent.to).toBe(AGENT);
    expect(lines(agent.transcript, 'bot')).toEqual(['New caller for sales, account 42, wants an upgrade.']);
    expect(lines(agent.transcript, 'peer')).toEqual(['thanks Sam']);
    expect(agent.end).toBe('caller_hangup');
    expect(r.callerEnd).toBe('ejected');
  }, 45_000);

  it('an agent who does not answer: the leg is stopped, the caller hears an apology and stays with the bot', async () => {
    const r = await h.run(warm, {
      config: { agent: AGENT, answerTimeoutMs: 1_500 },
      agents: { [AGENT]: { answer: 'no-answer' } },
      caller: [{ waitFor: 'say', match: /transfer result/, timeoutMs: 25_000 }],
    });
    expect(r.outcome).toBe('completed');
    expect(r.hangup).toBe('no agent');
    expect(lines(r.transcript, 'bot')).toEqual([
      'Hello, let me connect you to sales.',
      'Please hold while I connect you.',
      'I am sorry, nobody could take your call right now. I am still here to help.',
      'transfer result no_answer',
    ]);
    expect(r.warmTransfer).toEqual({ target: AGENT, bridged: false });
    expect(r.agents[0]!.end).toBe('stopped');
  }, 45_000);

  it('a busy agent fails at once (no ringing out the timeout)', async () => {
    const t0 = Date.now();
    const r = await h.run(warm, {
      config: { agent: AGENT, answerTimeoutMs: 20_000 },
      agents: { [AGENT]: { answer: 'busy' } },
      caller: [{ waitFor: 'say', match: /transfer result/, timeoutMs: 25_000 }],
    });
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(lines(r.transcript, 'bot').at(-1)).toBe('transfer result no_answer');
    expect(r.agents[0]!.end).toBe('busy');
  }, 45_000);

  it('the caller hanging up while bridged ends the agent’s leg too', async () => {
    const r = await h.run(warm, {
      config: { agent: AGENT },
      agents: {
        [AGENT]: { script: [{ waitFor: 'say', match: /account 42/ }, { wait: BRIEF_MS }, { say: 'Sam here.' }, { wait: 20_000 }] },
      },
      caller: [{ waitFor: 'peer', match: /Sam here/, timeoutMs: 20_000 }, { hangup: true }],
    });
    expect(r.outcome).toBe('completed');
    expect(r.detail).toMatch(/transferred to sip:sales@pbx\.example\.com/);
    await expect.poll(() => r.agents[0]?.state ?? h.emulator.dialOutCalls(r.record.roomName)[0]?.state, { timeout: 5_000 }).toBe('ended');
  }, 45_000);
});

describe('warm transfer without dial-out', () => {
  let h: BotHarness;
  beforeAll(async () => {
    h = await createBotHarness({ firstBot: warm });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a room without enable_dialout refuses startDialOut like Daily; the caller is told and not dropped', async () => {
    const r = await h.run(warm, { config: { agent: AGENT }, caller: [{ waitFor: 'say', match: /transfer result/, timeoutMs: 25_000 }] });
    expect(lines(r.transcript, 'bot').at(-1)).toBe('transfer result failed');
    expect(r.agents).toEqual([]);
    expect(r.outcome).toBe('completed');
  }, 45_000);
});
