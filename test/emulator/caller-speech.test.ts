/**
 * The scripted caller speaks (issue 22 item 6): a `say` step reaches a bot that receives audio as
 * real espeak-ng speech (its voice interrupts the prompt before any transcript), then as Daily's
 * transcript; `noise` mixes white noise in at the asked level.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { speechPcm, withNoise } from '../../src/emulator/speech.js';
import { runBotTest } from '../../src/testing/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const bot = path.join(here, '../fixtures/bots/barge-voice.ts');

function rms(pcm: Int16Array): number {
  let s = 0;
  for (const v of pcm) s += v * v;
  return Math.sqrt(s / pcm.length);
}

describe('the emulator’s caller speaks audio', () => {
  it('a `say` step is heard out loud by a bot with voice activity: it barges in, then the words arrive', async () => {
    const r = await runBotTest(bot, {
      caller: [
        { waitFor: 'say', match: /Welcome/ },
        { wait: 800 },
        { say: 'I have a question about my bill' },
        { waitFor: 'say', match: /you said/, timeoutMs: 15_000 },
      ],
    });
    expect(r.interruptions).toBe(1);
    expect(r.heard).toEqual(['I have a question about my bill']);
    expect(r.said.at(-1)).toBe('you said: I have a question about my bill');
  }, 45_000);

  it('noise is mixed in at the asked level, relative to the speech (0.3 ≈ 10 dB SNR), in the speech and the silence after it', async () => {
    const speech = (await speechPcm('testing one two three'))!;
    const silence = new Int16Array(16_000);
    const [noisy, hiss] = withNoise([speech, silence], 0.3);
    const noise = noisy!.map((v, i) => v - speech[i]!);
    const voiced = speech.filter((v) => Math.abs(v) >= 328);
    const level = rms(noise) / rms(voiced);
    expect(level).toBeGreaterThan(0.27);
    expect(level).toBeLessThan(0.33);
    expect(rms(hiss!) / rms(voiced)).toBeGreaterThan(0.27);
    expect(withNoise([speech], 0)[0]).toBe(speech);
  });
});
