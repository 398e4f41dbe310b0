/**
 * A speech-to-speech bot's part of a call in the worker (`realtime:` in defineBot): the pipeline
 * of src/sdk/realtime-run.ts wired to this call: the caller's frames, the bot's client (which stamps
 * `first_audio` and feeds the recording), the bot events, its `onError`, and the vendor's keys
 * from WorkerInit.realtime.
 */
import type { CallClient } from '../../daily/call-client.js';
import type { CallSession } from '../../sdk/session.js';
import { runRealtime } from '../../sdk/realtime-run.js';
import { loadS2s } from '../../voice/s2s-load.js';
import type { LoadedBot } from './bot-loader.js';
import type { CallRun } from './call-state.js';
import type { TurnTimer } from '../../core/turn-timing.js';

/** Runs the model's conversation until the call ends (rejects with the vendor's error when the call ends because of it). */
export function runRealtimeBot(
  run: CallRun,
  session: CallSession,
  bot: LoadedBot['bot'],
  client: CallClient,
  timer: TurnTimer,
): Promise<void> {
  const choice = bot.realtime!;
  const { call, send, init } = run.deps;
  const logger = run.logger.child({ s2s: choice.provider });
  return runRealtime(
    {
      call: session,
      callerAudio: session.callerAudio,
      sendAudio: (audio, signal) => client.sendAudio(audio, signal),
      report: (kind, value) => send({ type: 'bot', patchbayId: call.id, kind, value, atMs: Date.now() }),
      provider: () => loadS2s(choice.provider, init.realtime ?? {}),
      onError: (err) => {
        void Promise.resolve()
          .then(() => bot.onError?.(session, err))
          .catch((e: unknown) => logger.warn({ err: e }, 'onError threw'));
      },
      logger,
    },
    {
      ...choice,
      // The turn's stages (speechEnd → modelFirstAudio → firstFrameSent) into the call's turn timer
      // (the bot's client marks firstFrameSent too: a repeat is ignored), then the bot's own hook.
      onStage: (stage, atMs) => {
        timer.mark(stage, atMs);
        choice.onStage?.(stage, atMs);
      },
    },
  );
}
