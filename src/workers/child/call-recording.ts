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
  /** PCI pause: resolves once nothing more is recorded; never throws. */
  pause(): Promise<void>;
  /** Recording again (after RESUME_GUARD_MS: the tail of the last key's tone stays out); never throws. */
  resume(): Promise<void>;
}

/** After sensitive input, recording starts again this much later: a key's tone lasts ~100 ms after its event. */
const RESUME_GUARD_MS = 400;

const OFF: CallRecording = { mode: 'off', stop: async () => undefined, pause: async () => undefined, resume: async () => undefined };

function report(run: CallRun, value: string): void {
  run.deps.send({ type: 'bot', patchbayId: run.deps.call.id, kind: 'recording', value, atMs: Date.now() });
}

/** Starts the call's recording as configured (without waiting for it: the bot starts at once). */
export function startRecording(run: CallRun): CallRecording {
  const settings = recordingFor(run);
  if (settings.mode !== 'off' && settings.consent) return afterConsent(run, settings.consent);
  return begin(run, settings.mode);
}

function begin(run: CallRun, mode: Mode): CallRecording {
  const rec = mode === 'daily' ? startDaily(run) : mode === 'local' ? startLocal(run) : OFF;
  if (rec !== OFF) run.recordingControl = { pause: () => rec.pause(), resume: () => rec.resume() };
  return rec;
}

/** How long after the consent prompt a key still opts out. */
const CONSENT_KEY_WAIT_MS = 3_000;

/**
 * Consent: the prompt is said first (before the greeting); a key pressed during it or within
 * CONSENT_KEY_WAIT_MS after opts out — the call goes on unrecorded and the record says so.
 * Otherwise the recording starts then. The key is the consent's, not the bot's input.
 */
function afterConsent(run: CallRun, prompt: string): CallRecording {
  const mode = recordingFor(run).mode;
  let rec: CallRecording = OFF;
  run.askConsent = async (session) => {
    delete run.askConsent;
    report(run, 'consent asked');
    try {
      await session.say(prompt, { interruptible: true });
      const key = await session.collectDigits({ maxDigits: 1, firstDigitTimeoutMs: CONSENT_KEY_WAIT_MS });
      if (key) {
        report(run, 'opted-out');
        return;
      }
    } catch (err) {
      // The call ended during the prompt: nothing to record.
      if (run.ending.signal.aborted) return;
      run.logger.warn({ err: errorMessage(err) }, 'consent prompt failed; not recording');
      report(run, `error consent prompt failed: ${errorMessage(err)}`);
      return;
    }
    rec = begin(run, mode);
  };
  return {
    mode,
    pause: () => rec.pause(),
    resume: () => rec.resume(),
    stop: () => rec.stop(),
  };
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
  let paused = false;
  return {
    mode: 'local',
    pause: async () => {
      if (paused) return;
      paused = true;
      rec.pause();
      report(run, 'paused');
    },
    resume: async () => {
      if (!paused) return;
      paused = false;
      rec.resume(RESUME_GUARD_MS);
      report(run, 'resumed');
    },
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

interface DailyState {
  active: boolean;
  /** A start was accepted at least once. */
  started: boolean;
  paused: boolean;
  ids: Set<string>;
}

/** daily-js's recording events → the record. */
function listenToDaily(run: CallRun, st: DailyState, noteId: (id: string | undefined) => void): void {
  run.on('recording-started', (e) => {
    st.active = true;
    noteId(e.recordingId);
    report(run, `started${e.recordingId ? ` ${e.recordingId}` : ''}`);
  });
  run.on('recording-stopped', () => {
    st.active = false;
    report(run, 'stopped');
  });
  run.on('recording-error', (e) => {
    run.logger.warn({ errorMsg: e.errorMsg }, 'recording-error');
    report(run, `error ${e.errorMsg}`);
  });
}

/**
 * Daily's recording. A pause stops it and a resume starts a new one (a segment: its own recording
 * id); starts and stops run one after the other, so a pause that follows a start still in flight
 * waits for it, then stops it.
 */
function startDaily(run: CallRun): CallRecording {
  const rest = restClient(run);
  const { roomName } = run.deps.call;
  const st: DailyState = { active: false, started: false, paused: false, ids: new Set() };
  const noteId = (id: string | undefined): void => {
    if (id && !st.ids.has(id)) {
      st.ids.add(id);
      report(run, `id ${id}`);
    }
  };
  listenToDaily(run, st, noteId);
  const start = (): Promise<void> =>
    rest.startRecording(roomName, { type: 'cloud-audio-only' }, { signal: run.ending.signal }).then(
      (answer) => {
        st.active = true;
        st.started = true;
        noteId(answer.recordingId);
      },
      (err: unknown) => {
        // Refused (not enabled, already recording, rate limited…): the call goes on unrecorded.
        if (!run.ending.signal.aborted) run.logger.warn({ err: errorMessage(err) }, 'recording could not start; the call goes on');
        report(run, `error start refused: ${errorMessage(err)}`);
      },
    );
  const stopNow = async (why: string): Promise<void> => {
    if (!st.active) return;
    await withTimeout(rest.stopRecording(roomName, { type: 'cloud-audio-only' }), STOP_WAIT_MS).then(
      () => {
        st.active = false;
      },
      (err: unknown) => {
        run.logger.warn({ err: errorMessage(err) }, `recording stop (${why}) failed`);
        if (why === 'pause') report(run, `error pause failed: ${errorMessage(err)}`);
      },
    );
  };
  report(run, 'requested daily');
  let chain: Promise<void> = start();
  const queue = (op: () => Promise<void>): Promise<void> => (chain = chain.then(op, op));
  return {
    mode: 'daily',
    pause: () =>
      queue(async () => {
        if (st.paused) return;
        st.paused = true;
        await stopNow('pause');
        report(run, 'paused');
      }),
    resume: () =>
      queue(async () => {
        if (!st.paused) return;
        st.paused = false;
        await new Promise((r) => setTimeout(r, RESUME_GUARD_MS));
        if (run.ending.signal.aborted) return;
        report(run, 'resumed');
        await start();
      }),
    stop: async () => {
      await withTimeout(chain, STOP_WAIT_MS).catch(() => undefined);
      await stopNow('end').catch(() => undefined);
      if (st.ids.size === 0 && st.started) await findIds(run, rest, noteId);
    },
  };
}

/**
 * Daily documents no id in the start's answer, and `recording-started` carries `recordingId` only
 * for some types: the room's recordings are then looked up (GET /recordings?room_name=), so the
 * record can link and delete them.
 */
async function findIds(run: CallRun, rest: DailyRestClient, noteId: (id: string | undefined) => void): Promise<void> {
  try {
    const found = await withTimeout(rest.listRecordings({ roomName: run.deps.call.roomName }), STOP_WAIT_MS);
    for (const r of found.reverse()) noteId(r.id);
  } catch (err) {
    run.logger.warn({ err: errorMessage(err) }, 'recording ids not found (GET /recordings)');
  }
}
