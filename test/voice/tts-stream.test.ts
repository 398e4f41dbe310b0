/** The turn contract's helpers: words and what was heard, piece-built turns, ElevenLabs' alignment. */
import { describe, expect, it } from 'vitest';
import { espeakAvailable, espeakTts, textOnlyTts } from '../../src/voice/tts.js';
import { estimateWords, heardText, pieceTurn } from '../../src/voice/tts-stream.js';
import { AlignmentWords } from '../../src/voice/tts-elevenlabs.js';
import type { TtsTurnEvent } from '../../src/voice/tts-types.js';

async function events(turn: AsyncIterable<TtsTurnEvent>): Promise<TtsTurnEvent[]> {
  const out: TtsTurnEvent[] = [];
  for await (const ev of turn) out.push(ev);
  return out;
}

describe('what the caller heard', () => {
  const text = 'Sure, let me check that for you.';
  const words = estimateWords(text, 0, 2_000);

  it('estimated words cover the audio, in order, by length', () => {
    expect(words.map((w) => w.word)).toEqual(['Sure,', 'let', 'me', 'check', 'that', 'for', 'you.']);
    expect(words[0]!.startMs).toBe(0);
    expect(words.at(-1)!.endMs).toBeCloseTo(2_000, 6);
    for (let i = 1; i < words.length; i++) expect(words[i]!.startMs).toBeCloseTo(words[i - 1]!.endMs, 6);
  });

  it('cuts at the last word whose audio had started; with no word times, by the played share', () => {
    expect(heardText(text, words, 0, 2_000)).toBe('');
    expect(heardText(text, words, words[3]!.startMs + 1, 2_000)).toBe('Sure, let me check');
    expect(heardText(text, words, 5_000, 2_000)).toBe(text);
    expect(heardText(text, [], 1_000, 2_000)).toBe('Sure, let me check');
    expect(heardText(text, [], 0, 0)).toBe('');
  });
});

describe('pieceTurn: a turn for providers without contexts', () => {
  it.skipIf(!espeakAvailable())('espeak-ng: each piece is a mark, its words (over its real audio), then its audio', async () => {
    const turn = pieceTurn(espeakTts({ sampleRate: 16_000 }));
    turn.push('Hello there.');
    turn.push('We open at nine.');
    turn.end();
    const evs = await events(turn);
    expect(evs.map((e) => e.type)).toEqual(['mark', 'words', 'audio', 'mark', 'words', 'audio']);
    const audio = evs.filter((e) => e.type === 'audio');
    const words = evs.flatMap((e) => (e.type === 'words' ? e.words : []));
    const firstMs = (audio[0]!.pcm.length / 16_000) * 1000;
    const totalMs = audio.reduce((n, a) => n + (a.pcm.length / 16_000) * 1000, 0);
    expect(words.map((w) => w.word)).toEqual(['Hello', 'there.', 'We', 'open', 'at', 'nine.']);
    expect(words[2]!.startMs).toBeCloseTo(firstMs, 6); // the second piece's words start after the first's audio
    expect(words.at(-1)!.endMs).toBeCloseTo(totalMs, 6);
  });

  it('text-only: marks and empty audio (the words travel), and cancel() ends it', async () => {
    const turn = pieceTurn(textOnlyTts);
    turn.push('One.');
    const it = turn[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ type: 'mark', text: 'One.' });
    turn.cancel();
    const rest: unknown[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest.length).toBeLessThanOrEqual(2);
  });
});

describe("ElevenLabs' character alignment as words", () => {
  it('joins a word that straddles two chunks and places every word from the turn start', () => {
    const a = new AlignmentWords();
    const first = a.feed({ chars: [...'Hi th'], charStartTimesMs: [0, 50, 100, 150, 200], charDurationsMs: [50, 50, 50, 50, 50] }, 0);
    expect(first).toEqual([{ word: 'Hi', startMs: 0, endMs: 100 }]);
    const second = a.feed(
      { chars: [...'ere. Ok'], charStartTimesMs: [0, 50, 100, 150, 200, 250, 300], charDurationsMs: [50, 50, 50, 50, 50, 50, 50] },
      250,
    );
    expect(second).toEqual([{ word: 'there.', startMs: 150, endMs: 450 }]);
    expect(a.flush()).toEqual([{ word: 'Ok', startMs: 500, endMs: 600 }]);
  });
});
