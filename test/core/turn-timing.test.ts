/** The turn timer's rules (src/core/turn-timing.ts), its event-log form and what the PII masker keeps of it; a bot's `tts` option. */
import { describe, expect, it } from 'vitest';
import { checkedTurn, decodeTurn, encodeTurn, summarizeTurns, TurnTimer, type TurnTiming } from '../../src/core/turn-timing.js';
import { maskEvent } from '../../src/records/pii.js';
import { cartesia, defineBot } from '../../src/sdk/index.js';

function timer(): { t: TurnTimer; turns: TurnTiming[] } {
  const turns: TurnTiming[] = [];
  return { t: new TurnTimer((x) => turns.push(x)), turns };
}

describe('TurnTimer', () => {
  it('a cascade turn: the last end of speech before the transcript opens it, the first frame finishes it, the slow stage is named', () => {
    const { t, turns } = timer();
    t.mark('speechEnd', 1_000); // a pause: the caller went on
    t.mark('speechEnd', 2_000);
    t.mark('transcript', 2_100);
    t.mark('llmFirstToken', 2_600);
    t.mark('llmFirstToken', 2_700); // only the first counts
    t.mark('ttsFirstAudio', 2_750);
    t.mark('firstFrameSent', 2_760);
    t.mark('firstFrameSent', 2_900); // the rest of the answer: no turn
    expect(turns).toEqual([
      {
        index: 1,
        atMs: 2_000,
        stages: { speechEnd: 0, transcript: 100, llmFirstToken: 600, ttsFirstAudio: 750, firstFrameSent: 760 },
        slowest: 'llmFirstToken',
        totalMs: 760,
      },
    ]);
  });

  it('audio with no turn (a greeting, a prompt over a back-channel) is no turn; speech-to-speech stages are accepted', () => {
    const { t, turns } = timer();
    t.mark('ttsFirstAudio', 10);
    t.mark('firstFrameSent', 20);
    t.mark('speechEnd', 30);
    t.mark('ttsFirstAudio', 40);
    t.mark('firstFrameSent', 50);
    expect(turns).toEqual([]);
    t.mark('modelFirstAudio', 330);
    t.mark('firstFrameSent', 345);
    expect(turns.map((x) => [x.stages, x.slowest])).toEqual([
      [{ speechEnd: 0, modelFirstAudio: 300, firstFrameSent: 315 }, 'modelFirstAudio'],
    ]);
  });

  it('the caller speaking while the bot answers starts the next turn from that end of speech', () => {
    const { t, turns } = timer();
    t.mark('transcript', 100); // no voice activity: the turn opens at its transcript
    t.mark('speechEnd', 150);
    t.mark('firstFrameSent', 400);
    t.mark('transcript', 500);
    t.mark('firstFrameSent', 700);
    expect(turns.map((x) => [x.index, x.atMs, x.stages])).toEqual([
      [1, 100, { transcript: 0, firstFrameSent: 300 }],
      [2, 150, { speechEnd: 0, transcript: 350, firstFrameSent: 550 }],
    ]);
  });
});

describe('a turn in the event log', () => {
  const turn = checkedTurn({
    index: 3,
    atMs: 5_000,
    stages: { speechEnd: 0, transcript: 40, llmFirstToken: 300, firstFrameSent: 420, bogus: 1 },
  })!;

  it('round-trips, is kept by the PII masker, and a value of another shape is masked', () => {
    expect(encodeTurn(turn)).toBe('#3 speechEnd=0 transcript=40 llmFirstToken=300 firstFrameSent=420');
    expect(decodeTurn(encodeTurn(turn), 5_000)).toEqual(turn);
    const e = { kind: 'turn_latency', value: encodeTurn(turn), atMs: 5_000 };
    expect(maskEvent(e)).toEqual(e);
    expect(maskEvent({ ...e, value: 'card 4111 1111 1111 1111' }).value).not.toContain('4111');
  });

  it('p50/p95 by nearest rank; a worker’s turn without a first frame, or with junk, is refused', () => {
    const t = (ms: number) => ({ ...turn, totalMs: ms, stages: { firstFrameSent: ms } });
    expect(summarizeTurns([t(900), t(300), t(500), t(700)])).toEqual({ turns: 4, p50Ms: 500, p95Ms: 900 });
    expect(summarizeTurns([])).toBeNull();
    expect(checkedTurn({ index: 1, atMs: 1, stages: { speechEnd: 0 } })).toBeUndefined();
    expect(checkedTurn({ index: 'x', atMs: 1, stages: { firstFrameSent: 1 } })).toBeUndefined();
  });
});

describe('defineBot({ tts })', () => {
  it('takes a provider of its own; refuses an unknown one or an empty voice', () => {
    const onCall = () => undefined;
    expect(defineBot({ name: 'a', tts: cartesia({ voice: 'v1', model: 'sonic-3' }), onCall }).tts).toEqual({
      provider: 'cartesia',
      voice: 'v1',
      model: 'sonic-3',
    });
    // @ts-expect-error: not a provider
    expect(() => defineBot({ name: 'b', tts: { provider: 'nope' }, onCall })).toThrow(/tts\.provider/);
    expect(() => defineBot({ name: 'c', tts: cartesia({ voice: '' }), onCall })).toThrow(/tts\.voice/);
  });
});
