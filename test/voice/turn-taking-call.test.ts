import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runBotTest } from '../../src/testing/index.js';
import { MS_PER_CHAR } from '../../src/emulator/client.js';
import type { BotTestResult } from '../../src/testing/index.js';
import { PROMPT } from '../fixtures/bots/turns-voice.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const bot = path.join(here, '../fixtures/bots/turns-voice.ts');
/** The prompt's play-out time in the emulator (text-only audio). */
const PROMPT_MS = PROMPT.length * MS_PER_CHAR;

const turns = (r: BotTestResult) => r.events.filter((e) => e.kind === 'turn').map((e) => e.value);
/** Bot line "Welcome…" → bot line "you said…": how long the prompt played (plus the listen). */
function promptSpan(r: BotTestResult): number {
  const t = r.transcript;
  const start = t.find((l) => l.who === 'bot' && /Welcome/.test(l.text))!;
  const end = t.find((l) => l.who === 'bot' && /you said/.test(l.text))!;
  return end.atMs - start.atMs;
}

// Real espeak-ng audio from the emulator's caller, through a real worker (Silero VAD, Daily transcription emulation).
describe('turn-taking while the bot speaks (issue 22 item 5)', () => {
  it('a back-channel ("uh-huh") during a prompt leaves it playing, and is not the caller’s turn', async () => {
    const r = await runBotTest(bot, {
      caller: [
        { waitFor: 'say', match: /Welcome/ },
        { wait: 1_500 },
        { speak: 'uh-huh' },
        { waitFor: 'say', match: /you said/, timeoutMs: PROMPT_MS + 10_000 },
      ],
      timeoutMs: PROMPT_MS + 20_000,
    });
    expect(turns(r)).toEqual(['backchannel: uh-huh']);
    expect(r.interruptions).toBe(0);
    expect(r.heard).toEqual(['uh-huh']); // reported…
    expect(r.said.at(-1)).toBe('you said: nothing'); // …but not given to listen()
    expect(promptSpan(r)).toBeGreaterThanOrEqual(PROMPT_MS);
  }, 60_000);

  it('a real sentence interrupts: the bot goes silent while the caller is still speaking, and hears them', async () => {
    const sentence = 'Actually I want to talk about my bill';
    const r = await runBotTest(bot, {
      caller: [
        { waitFor: 'say', match: /Welcome/ },
        { wait: 1_000 },
        { speak: sentence },
        { waitFor: 'say', match: /you said/, timeoutMs: 15_000 },
      ],
      timeoutMs: 40_000,
    });
    const t = r.transcript;
    const spoke = t.find((l) => l.who === 'caller' && l.text === sentence)!;
    const silent = t.find((l) => l.who === 'system' && l.text === 'bot audio interrupted')!;
    expect(silent).toBeDefined();
    // Barge-in → bot silent: before the sentence (≈ 2.4 s of audio) is over, so before any transcript.
    const bargeInMs = silent.atMs - spoke.atMs;
    console.log(`barge-in → bot silent: ${bargeInMs} ms`);
    expect(bargeInMs).toBeLessThan(1_800);
    expect(turns(r)[0]).toBe('paused');
    expect(turns(r)[1]).toBe(`interrupted (words: ${sentence})`);
    expect(turns(r)).not.toContain('resumed');
    expect(r.said.at(-1)).toBe(`you said: ${sentence}`);
    expect(r.interruptions).toBe(1);
    expect(promptSpan(r)).toBeLessThan(PROMPT_MS);
  }, 60_000);

  it('mode "voice" (the old rule): any voice stops the prompt at once, "uh-huh" too — sooner than words can', async () => {
    const r = await runBotTest(path.join(here, '../fixtures/bots/turns-voice-mode.ts'), {
      caller: [
        { waitFor: 'say', match: /Welcome/ },
        { wait: 1_000 },
        { speak: 'uh-huh' },
        { waitFor: 'say', match: /you said/, timeoutMs: 15_000 },
      ],
      timeoutMs: 40_000,
    });
    const t = r.transcript;
    const spoke = t.find((l) => l.who === 'caller' && l.text === 'uh-huh')!;
    const silent = t.find((l) => l.who === 'system' && l.text === 'bot audio interrupted')!;
    console.log(`mode voice: barge-in → bot silent: ${silent.atMs - spoke.atMs} ms`);
    expect(turns(r)).toEqual(['interrupted (voice)']);
    expect(r.said.at(-1)).toBe('you said: uh-huh');
    expect(promptSpan(r)).toBeLessThan(PROMPT_MS);
  }, 60_000);

  it('a false interruption (a laugh: voice, no words) pauses the bot, which then resumes where it stopped', async () => {
    const r = await runBotTest(bot, {
      caller: [
        { waitFor: 'say', match: /Welcome/ },
        { wait: 1_500 },
        { sound: 'hahaha hahaha' },
        { waitFor: 'say', match: /you said/, timeoutMs: PROMPT_MS + 15_000 },
      ],
      timeoutMs: PROMPT_MS + 25_000,
    });
    expect(turns(r)).toEqual(['paused', 'resumed']);
    expect(r.interruptions).toBe(1); // the pause
    expect(r.heard).toEqual([]);
    expect(r.said.at(-1)).toBe('you said: nothing');
    // The whole prompt was played: its time plus the pause (not from the start again: < 2× the prompt).
    const span = promptSpan(r);
    expect(span).toBeGreaterThanOrEqual(PROMPT_MS);
    expect(span).toBeLessThan(PROMPT_MS * 2);
    const ev = (v: string) => r.events.find((e) => e.kind === 'turn' && e.value === v)!.atMs;
    console.log(`false interruption: paused for ${ev('resumed') - ev('paused')} ms; prompt span ${span} ms (prompt ${PROMPT_MS} ms)`);
  }, 60_000);
});
