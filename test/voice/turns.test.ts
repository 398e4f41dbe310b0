import { describe, expect, it } from 'vitest';
import { contentWords, interrupts, normalize, resolveInterruptions } from '../../src/voice/turns.js';
import { feedStt, remainder, TurnTaking } from '../../src/sdk/turns.js';
import type { AudioOut } from '../../src/daily/call-client.js';

describe('which words interrupt (src/voice/turns.ts)', () => {
  const o = resolveInterruptions();
  it('back-channels, alone or together, do not interrupt; anything else does', () => {
    for (const t of ['uh-huh', 'Uh huh.', 'mm-hmm', 'Yeah!', 'okay', 'OK yeah', 'right, right', 'I see', 'mhm'])
      expect(interrupts(t, o), t).toBe(false);
    for (const t of ['stop', 'wait a second', 'yeah but no', 'I want my bill', 'okay so what about Tuesday'])
      expect(interrupts(t, o), t).toBe(true);
    expect(contentWords('yeah but wait', o.backchannels)).toEqual(['but', 'wait']);
    expect(normalize('  Uh-HUH!! ')).toBe('uh huh');
  });

  it('minWords and the list are the bot’s', () => {
    const two = resolveInterruptions({ minWords: 2, backchannels: ['go on'] });
    expect(interrupts('stop', two)).toBe(false);
    expect(interrupts('stop now', two)).toBe(true);
    expect(interrupts('go on', two)).toBe(false);
    expect(interrupts('yeah', two)).toBe(false); // no longer a back-channel, but one word
    expect(interrupts('yeah yeah', two)).toBe(true); // two words, neither a back-channel here
  });

  it('refuses nonsense options', () => {
    expect(() => resolveInterruptions({ minWords: 0 })).toThrow(/minWords/);
    expect(() => resolveInterruptions({ pauseAfterMs: -1 })).toThrow(/pauseAfterMs/);
    // @ts-expect-error: not a mode
    expect(() => resolveInterruptions({ mode: 'loud' })).toThrow(/mode/);
  });
});

describe('pause and resume (src/sdk/turns.ts)', () => {
  it('a back-channel is the caller’s answer when the prompt ends just after it, not when it goes on', async () => {
    const kept: string[] = [];
    const tt = new TurnTaking({ report: () => undefined, keep: (t) => kept.push(t) });
    let off = tt.register(() => undefined);
    expect(tt.words('yes', true)).toBe(false); // over the end of "…is that right?"
    off(); // the prompt ends at once
    expect(kept).toEqual(['yes']);
    off = tt.register(() => undefined);
    expect(tt.words('uh-huh', true)).toBe(false);
    await new Promise((r) => setTimeout(r, 1_600)); // the prompt goes on well past it
    off();
    expect(kept).toEqual(['yes']);
  });

  it('the rest of the audio after a pause is what was not played yet', () => {
    const pcm = new Int16Array(16_000).map((_, i) => i);
    const rest = remainder({ pcm, sampleRate: 16_000, text: 'hello' }, 250)!;
    expect(rest.pcm.length).toBe(12_000);
    expect(rest.pcm[0]).toBe(4_000);
    expect(rest.continues).toBe(true);
    expect(rest.text).toBeUndefined();
    expect(remainder({ pcm, sampleRate: 16_000 }, 1_000)).toBeUndefined();
    const words = remainder({ pcm: new Int16Array(0), sampleRate: 16_000, text: 'x'.repeat(50) }, 1_000)!;
    expect(words.durationMs).toBe(2_000);
  });

  /** A playout of `ms` that stops when its signal aborts: what was sent, and for how long it played. */
  function player() {
    const sent: Array<{ audio: AudioOut; playedMs: number }> = [];
    const send = (audio: AudioOut, s: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        const t0 = Date.now();
        const ms = (audio.pcm.length / audio.sampleRate) * 1000;
        const timer = setTimeout(() => {
          sent.push({ audio, playedMs: Date.now() - t0 });
          resolve();
        }, ms);
        s.addEventListener('abort', () => {
          clearTimeout(timer);
          sent.push({ audio, playedMs: Date.now() - t0 });
          reject(s.reason instanceof Error ? s.reason : new Error(String(s.reason)));
        });
      });
    return { sent, send };
  }

  it('voice that lasts pauses; no words → resumes with the rest; words → interrupted', async () => {
    const events: string[] = [];
    const tt = new TurnTaking({ report: (v) => events.push(v), keep: () => undefined }, { pauseAfterMs: 300, falseInterruptionMs: 100 });
    const { sent, send } = player();
    const barge = new AbortController();
    const off = tt.register(() => barge.abort(new Error('barge')));
    const audio = { pcm: new Int16Array(8_000), sampleRate: 8_000, text: 'one second' };
    const done = tt.play(audio, barge.signal, send);
    await new Promise((r) => setTimeout(r, 200));
    tt.voiceStart();
    tt.voiceLasted(200);
    expect(tt.paused).toBe(false);
    tt.voiceLasted(320);
    expect(tt.paused).toBe(true);
    tt.voiceEnd();
    await done;
    off();
    expect(events).toEqual(['paused', 'resumed']);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.audio.continues).toBe(true);
    // Played in all: the whole second, once (± timer slack).
    const playedSamples = 8_000 - sent[1]!.audio.pcm.length;
    expect(Math.abs(playedSamples / 8 - sent[0]!.playedMs)).toBeLessThan(30);

    const barge2 = new AbortController();
    const off2 = tt.register(() => barge2.abort(new Error('barge')));
    const second = tt.play(audio, barge2.signal, send);
    tt.voiceStart();
    expect(tt.words('uh-huh', false)).toBe(false); // interim back-channel: still deciding
    tt.voiceLasted(600);
    expect(tt.paused).toBe(true);
    expect(tt.words('uh-huh can you repeat', false)).toBe(true);
    await expect(second).rejects.toThrow('barge');
    off2();
    expect(events.slice(2)).toEqual(['paused', 'interrupted (words: uh-huh can you repeat)']);
  });
});

describe('SttEvents to the session (feedStt)', () => {
  it('finals, interims and the provider’s end of turn go where turn-taking and listen() read them', () => {
    const got: string[] = [];
    const session = {
      pushTranscript: (t: string) => got.push(`final ${t}`),
      pushInterim: (t: string) => got.push(`interim ${t}`),
      pushEndOfTurn: (t?: string) => got.push(`end ${t ?? '-'}`),
    };
    feedStt(session, { type: 'speech-started', atMs: 0 });
    feedStt(session, { type: 'interim', text: 'book a', atMs: 300 });
    feedStt(session, { type: 'interim', text: ' ', atMs: 350 });
    feedStt(session, { type: 'final', text: 'book a table', atMs: 900 });
    feedStt(session, { type: 'end-of-turn', text: 'book a table', atMs: 1_200 });
    feedStt(session, { type: 'end-of-turn', atMs: 2_000 });
    expect(got).toEqual(['interim book a', 'final book a table', 'end book a table', 'end -']);
  });
});
