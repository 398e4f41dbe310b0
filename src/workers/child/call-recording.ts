/**
 * The call's recording, in the worker (docs/operations.md, "Recording"). Which mode: the bot's
 * `recording`, else its route's `config.recording`, else the service's RECORDING (off by default).
 *
 * `daily`: Daily's cloud-audio-only recording, started through REST once the caller is connected
 * (`POST /rooms/:name/recordings/start`: the `start` rate class, as background work behind the
 * call path's starts) and stopped at the end. daily-js's `recording-started`, `-stopped` and
 * `-error` events, and a refused start, become `recording` events of the call's record: a
 * recording that cannot start never ends the call.
 */
import { DailyRestClient } from '../../daily/rest.js';
import { errorMessage } from '../../core/errors.js';
import type { RecordingOptions } from '../../sdk/index.js';
import type { CallRun } from './call-state.js';
import { withTimeout } from './call-ending.js';
import { parentRateLimit } from './rate-grant.js';
import { LocalRecorder } from './local-recording.js';
import path from 'node:path';

type Mode = RecordingOptions['mode'];
const MODES: readonly Mode[] = ['off', 'daily', 'local'];
/** How long the end of a call waits for the stop (the caller is gone or being hung up on: nobody waits for it). */
const STOP_WAIT_MS = 3_000;

/** The bot's, the route's, else the service's recording settings. */
export function recordingFor(run: CallRun): RecordingOptions {
  const fromBot = run.loaded?.bot.recording;
  if (fromBot && MODES.includes(fromBot.mode)) return fromBot;
  const fromRoute = run.deps.call.botConfig?.recording;
  if (typeof fromRoute === 'object' && fromRoute !== null && 'mode' in fromRoute && MODES.includes(fromRoute.mode as Mode)) {
    return fromRoute as RecordingOptions;
  }
  return { mode: run.deps.init.recording?.mode ?? 'off' };
}

export interface CallRecording {
  readonly mode: Mode;
  /** Stops what is recording (the call's end); never throws. */
  stop(): Promise<void>;
}

const OFF: CallRecording = { mode: 'off', stop: async () => undefined };

function report(run: CallRun, value: string): void {
  run.deps.send({ type: 'bot', patchbayId: run.deps.call.id, kind: 'recording', value, atMs: Date.now() });
}

/** Starts the call's recording as configured (without waiting for it: the bot starts at once). */
export function startRecording(run: CallRun): CallRecording {
  const settings = recordingFor(run);
  if (settings.mode === 'daily') return startDaily(run);
  if (settings.mode === 'local') return startLocal(run);
  return OFF;
}

/** Both sides to a WAV under RECORDINGS_DIR (local-recording.ts); a failure to open it is an event, not a dropped call. */
function startLocal(run: CallRun): CallRecording {
  const { init, call, client } = run.deps;
  report(run, 'requested local');
  let rec: LocalRecorder;
  try {
    if (!init.recording?.dir) throw new Error('no RECORDINGS_DIR');
    rec = new LocalRecorder(init.recording.dir, `${call.id}.wav`);
  } catch (err) {
    run.logger.warn({ err: errorMessage(err) }, 'local recording could not start; the call goes on');
    report(run, `error ${errorMessage(err)}`);
    return OFF;
  }
  report(run, `id ${path.basename(rec.file)}`);
  report(run, 'started');
  run.botAudioTap = (pcm, rate) => rec.bot(pcm, rate);
  run.on('audio-frame', (f) => {
    if (f.participantId === run.callerSessionId) rec.caller(f.pcm, f.sampleRate);
  });
  client.receiveAudio(true).catch((err: unknown) => report(run, `error caller audio unavailable: ${errorMessage(err)}`));
  return {
    mode: 'local',
    stop: async () => {
      delete run.botAudioTap;
      try {
        rec.close();
        report(run, 'stopped');
      } catch (err) {
        report(run, `error ${errorMessage(err)}`);
      }
    },
  };
}

function restClient(run: CallRun): DailyRestClient {
  const { init } = run.deps;
  return new DailyRestClient({
    apiUrl: init.dailyApiUrl,
    apiKey: init.dailyApiKey,
    timeoutMs: init.apiTimeoutMs,
    rateLimit: parentRateLimit,
  });
}

function startDaily(run: CallRun): CallRecording {
  const rest = restClient(run);
  const { roomName } = run.deps.call;
  const ids = new Set<string>();
  let active = false;
  const noteId = (id: string | undefined): void => {
    if (id && !ids.has(id)) {
      ids.add(id);
      report(run, `id ${id}`);
    }
  };
  run.on('recording-started', (e) => {
    active = true;
    noteId(e.recordingId);
    report(run, `started${e.recordingId ? ` ${e.recordingId}` : ''}`);
  });
  run.on('recording-stopped', () => {
    active = false;
    report(run, 'stopped');
  });
  run.on('recording-error', (e) => {
    run.logger.warn({ errorMsg: e.errorMsg }, 'recording-error');
    report(run, `error ${e.errorMsg}`);
  });
  report(run, 'requested daily');
  const started = rest
    .startRecording(roomName, { type: 'cloud-audio-only' }, { signal: run.ending.signal })
    .then((answer) => {
      active = true;
      noteId(answer.recordingId);
      return true;
    })
    .catch((err: unknown) => {
      // Refused (not enabled, already recording, rate limited…): the call goes on unrecorded.
      if (!run.ending.signal.aborted) run.logger.warn({ err: errorMessage(err) }, 'recording could not start; the call goes on');
      report(run, `error start refused: ${errorMessage(err)}`);
      return false;
    });
  return {
    mode: 'daily',
    stop: async () => {
      if (!(await started) || !active) return;
      await withTimeout(rest.stopRecording(roomName, { type: 'cloud-audio-only' }), STOP_WAIT_MS).catch((err: unknown) =>
        run.logger.debug({ err: errorMessage(err) }, 'recording stop (the session end stops it too)'),
      );
    },
  };
}
