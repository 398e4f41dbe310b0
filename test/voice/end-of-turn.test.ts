import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { onnxEndOfTurn, TurnAudio } from '../../src/voice/end-of-turn.js';
import { listenForTurn, type TurnListenerDeps } from '../../src/sdk/listen-turn.js';
import { deferred, Inbox } from '../../src/sdk/inbox.js';
import { runBotTest } from '../../src/testing/index.js';
import { peakModel } from '../helpers/onnx-model.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SAMPLES_8S = 128_000;
const tone = (n: number, amp: number) => new Int16Array(n).map((_, i) => Math.round(Math.sin(i / 3) * amp));

describe('an end-of-turn model in an ONNX file (built by the test: onnxruntime-node runs it)', () => {
  it('sees the caller’s last 8 s at 16 kHz, as [1, 128000]: silence → low, voice → high', async () => {
    const det = onnxEndOfTurn({ model: peakModel({ samples: SAMPLES_8S, scale: 20, bias: -5 }) });
    const audio = new TurnAudio();
    audio.push(new Int16Array(8_000), 8_000); // 1 s of phone audio
    expect(audio.snapshot().length).toBe(16_000); // resampled to 16 kHz
    expect(await det.endOfTurn({ audio16k: audio.snapshot(), text: '' })).toBeLessThan(0.01);
    audio.push(tone(8_000, 16_000), 8_000);
    expect(await det.endOfTurn({ audio16k: audio.snapshot(), text: '' })).toBeGreaterThan(0.99);
    // 8 more seconds of silence: the voice left the model's window.
    for (let i = 0; i < 8; i++) audio.push(new Int16Array(16_000), 16_000);
    expect(audio.snapshot().length).toBe(SAMPLES_8S);
    expect(await det.endOfTurn({ audio16k: audio.snapshot(), text: '' })).toBeLessThan(0.01);
    await det.close?.();
  });

  it('a model that outputs a logit gets a sigmoid; a model with another input size is refused', async () => {
    const logit = onnxEndOfTurn({ model: peakModel({ samples: SAMPLES_8S, scale: 20, bias: -5, logit: true }), output: 'logit' });
    const p = await logit.endOfTurn({ audio16k: tone(16_000, 16_000), text: '' });
    expect(p).toBeGreaterThan(0.99);
    expect(p).toBeLessThanOrEqual(1);
    const short = onnxEndOfTurn({ model: peakModel({ samples: SAMPLES_8S, scale: 20, bias: -5 }), maxAudioMs: 4_000 });
    await expect(short.endOfTurn({ audio16k: tone(16_000, 16_000), text: '' })).rejects.toThrow(/dim|shape|Got invalid dimensions/i);
    const missing = onnxEndOfTurn({ model: path.join(here, 'no-such-model.onnx') });
    await expect(missing.load()).rejects.toThrow(/could not be loaded/);
  });
});

describe('listen(): the turn ends on the provider’s end of turn, or VAD silence with the words', () => {
  function deps(over: Partial<TurnListenerDeps> = {}) {
    const ctl = new AbortController();
    const speech = { end: deferred<void>(), inSpeech: true };
    const stt = { end: deferred<{ text?: string }>() };
    const d: TurnListenerDeps = {
      transcripts: new Inbox<string>(),
      signal: ctl.signal,
      inSpeech: () => speech.inSpeech,
      speechEnd: () => speech.end.promise,
      sttTurnEnd: () => stt.end.promise,
      turnOver: async () => true,
      maxTurnPauseMs: 300,
      ...over,
    };
    return { d, speech, stt, ctl };
  }

  it('an end-of-turn with the whole turn’s text ends it at once, with that text', async () => {
    const { d, stt } = deps();
    const turn = listenForTurn(d, 5_000);
    d.transcripts.push('book a table');
    setTimeout(() => stt.end.resolve({ text: 'book a table for two' }), 50);
    const t0 = Date.now();
    expect(await turn).toBe('book a table for two');
    expect(Date.now() - t0).toBeLessThan(1_000); // not the 1.5 s wait after VAD silence
  });

  it('an end-of-turn without text ends it with the finals so far; a transcript that raced it is kept for the next listen()', async () => {
    const { d, stt } = deps();
    const turn = listenForTurn(d, 5_000);
    d.transcripts.push('yes');
    await new Promise((r) => setTimeout(r, 20));
    stt.end.resolve({});
    d.transcripts.push('and another thing'); // lands as the end of turn wins
    expect(await turn).toBe('yes');
    expect(await d.transcripts.next(100, d.signal)).toBe('and another thing');
  });

  it('VAD silence and a model that says "goes on": the turn waits for more, bounded by maxTurnPauseMs', async () => {
    let asked = 0;
    const { d, speech } = deps({ turnOver: async (parts) => (asked++, !parts.at(-1)!.endsWith('and')) });
    const turn = listenForTurn(d, 5_000);
    d.transcripts.push('a pizza and');
    speech.inSpeech = false;
    const end = speech.end;
    speech.end = deferred<void>();
    end.resolve();
    await new Promise((r) => setTimeout(r, 100));
    speech.inSpeech = true;
    d.transcripts.push('a salad');
    speech.inSpeech = false;
    speech.end.resolve();
    expect(await turn).toBe('a pizza and a salad');
    expect(asked).toBe(2);
    // Nothing after "goes on": the turn ends after maxTurnPauseMs.
    const { d: d2, speech: s2 } = deps({ turnOver: async () => false });
    const t0 = Date.now();
    const turn2 = listenForTurn(d2, 5_000);
    d2.transcripts.push('well');
    s2.inSpeech = false;
    const end2 = s2.end;
    s2.end = deferred<void>(); // as the session does: a new promise for the next end of speech
    end2.resolve();
    expect(await turn2).toBe('well');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });
});

describe('an end-of-turn detector in a call (real espeak-ng audio, emulator, real worker)', () => {
  it('a pause after "…and" does not end the turn: the bot hears both halves as one turn', async () => {
    const r = await runBotTest(path.join(here, '../fixtures/bots/turns-eot.ts'), {
      caller: [
        { waitFor: 'say', match: /Hello/ },
        { speak: 'I would like a pizza and' },
        { wait: 600 },
        { speak: 'a green salad please' },
        { waitFor: 'say', match: /you said/, timeoutMs: 15_000 },
      ],
      timeoutMs: 40_000,
    });
    expect(r.said.at(-1)).toBe('you said: I would like a pizza and a green salad please');
    const turns = r.events.filter((e) => e.kind === 'turn').map((e) => e.value);
    expect(turns).toEqual(['end-of-turn 0.10 (goes on)', 'end-of-turn 0.90']);
  }, 60_000);
});
