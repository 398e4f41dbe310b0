import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runBotTest } from '../../src/testing/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const bot = path.join(here, '../fixtures/bots/barge-voice.ts');

describe('turn detection on the caller’s audio (emulator speaks real espeak-ng audio)', () => {
  it('the caller’s voice interrupts the prompt before any transcript, and the turn ends when they stop speaking', async () => {
    const r = await runBotTest(bot, {
      caller: [
        { waitFor: 'say', match: /Welcome/ },
        { wait: 800 },
        { speak: 'I would like to talk about my bill please' },
        { waitFor: 'say', match: /you said/, timeoutMs: 15_000 },
      ],
    });
    const t = r.transcript;
    const spoke = t.find((l) => l.who === 'caller' && /my bill/.test(l.text))!;
    const interrupted = t.find((l) => l.who === 'system' && l.text === 'bot audio interrupted')!;
    expect(interrupted).toBeDefined();
    // Barge-in on voice: well before the words could have been transcribed (they arrive at the end of the speech, ≈ 2 s).
    expect(interrupted.atMs - spoke.atMs).toBeLessThan(1_200);
    expect(r.heard).toEqual(['I would like to talk about my bill please']);
    expect(r.said.at(-1)).toBe('you said: I would like to talk about my bill please');
    expect(r.interruptions).toBe(1);
    expect(r.outcome).toBe('completed');
  }, 45_000);

  it('without speech the prompt plays to its end (noise-free silence is not a turn)', async () => {
    const r = await runBotTest(bot, {
      config: { listenMs: 1_000 },
      caller: [{ waitFor: 'say', match: /you said: nothing/, timeoutMs: 30_000 }],
    });
    expect(r.interruptions).toBe(0);
    expect(r.said.at(-1)).toBe('you said: nothing');
  }, 45_000);
});
