/**
 * Where the worker times a call's turns (src/core/turn-timing.ts): the session marks the caller's
 * stages (`speechEnd` from its VAD, `transcript` when `listen()` returns a turn); the bot's LLM and
 * TTS are wrapped here to mark their first output; the call client's `sendAudio` marks the first
 * frame (call-bot.ts). A finished turn goes to the parent as a `turn` message. A speech-to-speech
 * pipeline marks through the same timer (`run.turnTimer.mark('speechEnd' | 'modelFirstAudio')`,
 * call-state.ts); its audio through the bot's call client marks `firstFrameSent`.
 *
 * The wrappers are Proxies: everything else of the provider (the TTS cache's `has`/`preload`, a
 * vendor's `close`) passes through untouched.
 */
import { TurnTimer, type TurnStage } from '../../core/turn-timing.js';
import type { LlmProvider, LlmStream } from '../../voice/llm.js';
import type { SpeechAudio, TtsProvider, TtsTurn, TtsTurnEvent } from '../../voice/tts-types.js';
import type { ChildMessage } from '../protocol.js';

export type Mark = (stage: TurnStage) => void;

/** The call's timer; finished turns are sent to the parent. */
export function turnClock(patchbayId: string, send: (m: ChildMessage) => unknown): TurnTimer {
  return new TurnTimer((turn) => send({ type: 'turn', patchbayId, turn }));
}

/** Calls `mark` once, at the first item of `it`. */
async function* markFirst<T>(it: AsyncIterable<T>, mark: () => void, counts: (v: T) => boolean = () => true): AsyncGenerator<T> {
  let first = true;
  for await (const v of it) {
    if (first && counts(v)) {
      first = false;
      mark();
    }
    yield v;
  }
}

/** A Proxy of `target` with `overrides` in place of some of its members (the rest bound to it). */
function withOverrides<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get: (t, prop) => {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return Reflect.get(overrides, prop);
      const v: unknown = Reflect.get(t, prop, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

/** `stream()` marks `llmFirstToken` at its first text; `chat()` when its answer is in. */
export function timedLlm(llm: LlmProvider, mark: Mark): LlmProvider {
  return withOverrides(llm, {
    chat: async (messages, opts) => {
      const text = await llm.chat(messages, opts);
      mark('llmFirstToken');
      return text;
    },
    stream: (messages, opts): LlmStream => {
      const inner = llm.stream(messages, opts);
      const text = markFirst(
        inner,
        () => mark('llmFirstToken'),
        (t) => t.length > 0,
      );
      return {
        get text() {
          return inner.text;
        },
        get toolCalls() {
          return inner.toolCalls;
        },
        abort: (reason?: unknown) => inner.abort(reason),
        [Symbol.asyncIterator]: () => text[Symbol.asyncIterator](),
      };
    },
  });
}

/** Marks `ttsFirstAudio` at a turn's first audio, a synthesized phrase, or a stream's first chunk. */
export function timedTts(tts: TtsProvider, mark: Mark): TtsProvider {
  const first = () => mark('ttsFirstAudio');
  const overrides: Partial<TtsProvider> = {
    synthesize: async (text: string, signal?: AbortSignal): Promise<SpeechAudio> => {
      const audio = await tts.synthesize(text, signal);
      first();
      return audio;
    },
  };
  if (tts.synthesizeStream) {
    const stream = tts.synthesizeStream.bind(tts);
    overrides.synthesizeStream = (text, signal) => markFirst(stream(text, signal), first);
  }
  if (tts.openTurn) {
    const open = tts.openTurn.bind(tts);
    overrides.openTurn = (opts): TtsTurn => {
      const turn = open(opts);
      const events = markFirst<TtsTurnEvent>(turn, first, (e) => e.type === 'audio');
      return withOverrides(turn, { [Symbol.asyncIterator]: () => events[Symbol.asyncIterator]() });
    };
  }
  return withOverrides(tts, overrides);
}
