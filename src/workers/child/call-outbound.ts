/**
 * An outbound call in the worker (POST /calls, docs/outbound.md): after the bot joined, dial the
 * far end (`startDialOut`, paced by the parent's rate limiter in Daily's `start` class), wait for it
 * to answer, and — with voicemail detection — classify the answer as person or machine from its
 * first seconds of audio (src/voice/voicemail.ts) before the bot runs.
 *
 * Progress goes to the parent as `dialout` bot events: `dialing`, then `answered`, or the failure
 * (`busy`, `no-answer`, `failed`) that ends the call (outcome `dialout_failed`); the verdict as a
 * `voicemail` event (`machine: beep`, `person: short-greeting`, …).
 */
import { errorMessage } from '../../core/errors.js';
import type { VoicemailInfo } from '../../sdk/index.js';
import { VoicemailDetector } from '../../voice/voicemail.js';
import type { OutboundDial } from '../protocol.js';
import type { CallRun } from './call-state.js';
import { parentRateLimit } from './rate-grant.js';

export type DialFailure = 'busy' | 'no-answer' | 'failed';

/** After the machine's verdict, how long the beep (or the greeting's end) is waited for at most. */
const RECORD_WAIT_MAX_MS = 20_000;
/** Wall time after the answer within which a verdict is expected (the detector's maxWaitMs, 6 s, and a margin). */
const VERDICT_WAIT_MS = 6_500;
/** A grant's lease: startDialOut answers within it. */
const GRANT_LEASE_MS = 10_000;

type LegEvent = { kind: 'answered' | 'stopped' } | { kind: 'error'; msg: string };

/** Daily's dial-out error text → our status (Daily's messages name busy and no answer). */
export function failureOf(msg: string): DialFailure {
  if (/busy/i.test(msg)) return 'busy';
  if (/no[ -_]?answer|not answer|timeout|timed out/i.test(msg)) return 'no-answer';
  return 'failed';
}

function report(run: CallRun, kind: 'dialout' | 'voicemail', value: string): void {
  run.deps.send({ type: 'bot', patchbayId: run.deps.call.id, kind, value, atMs: Date.now() });
}

function fail(run: CallRun, status: DialFailure, message: string): undefined {
  report(run, 'dialout', status);
  run.ending.end({ kind: 'bot-ended', outcome: 'dialout_failed', detail: `${status}: ${message}` });
  return undefined;
}

/** startDialOut once the parent's limiter grants a `start`-class request. */
async function startLeg(run: CallRun, dial: OutboundDial): Promise<string> {
  const { client, call } = run.deps;
  const release = await parentRateLimit('POST', `/rooms/${call.roomName}/dialOut/start`, 'call', run.ending.signal, GRANT_LEASE_MS);
  try {
    const opts = { ...dial.to, displayName: call.bot, ...(dial.callerId ? { callerId: dial.callerId } : {}) };
    return (await client.startDialOut(opts)).sessionId;
  } finally {
    release();
  }
}

/** Dials and waits for the answer; the leg's session id, or undefined (the call ended: its failure is reported). */
async function dialAndWait(run: CallRun, dial: OutboundDial): Promise<string | undefined> {
  let sessionId: string | undefined;
  const early: Array<{ id: string | undefined; e: LegEvent }> = [];
  let onLeg = (id: string | undefined, e: LegEvent) => void early.push({ id, e });
  run.on('dialout-answered', (e) => onLeg(e.sessionId, { kind: 'answered' }));
  run.on('dialout-stopped', (e) => onLeg(e.sessionId, { kind: 'stopped' }));
  run.on('dialout-error', (e) => onLeg(e.sessionId, { kind: 'error', msg: e.errorMsg }));
  report(run, 'dialout', `dialing (attempt ${dial.attempt})`);
  try {
    sessionId = await startLeg(run, dial);
  } catch (err) {
    if (run.ending.result) return undefined;
    const msg = errorMessage(err);
    return fail(run, /429|rate/i.test(msg) ? 'failed' : failureOf(msg), `startDialOut: ${msg}`);
  }
  const id = sessionId;
  const outcome = await new Promise<LegEvent | 'timeout' | 'ended'>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), dial.ringTimeoutMs);
    void run.ending.done.then(() => resolve('ended'));
    onLeg = (legId, e) => {
      if (legId !== undefined && legId !== id) return;
      clearTimeout(timer);
      resolve(e);
    };
    for (const x of early.splice(0)) onLeg(x.id, x.e);
  });
  if (outcome === 'ended') return undefined;
  if (outcome !== 'timeout' && outcome.kind === 'answered') return id;
  await run.deps.client.stopDialOut(id).catch(() => undefined);
  if (outcome === 'timeout') return fail(run, 'no-answer', `no answer within ${dial.ringTimeoutMs} ms`);
  if (outcome.kind === 'error') return fail(run, failureOf(outcome.msg), outcome.msg);
  return fail(run, 'failed', 'the leg ended before it was answered');
}

/** The far end's first seconds: a machine's info (once its beep has passed), or undefined for a person. */
async function detectVoicemail(run: CallRun, legId: string): Promise<VoicemailInfo | undefined> {
  const { client } = run.deps;
  let detector: VoicemailDetector | undefined;
  const t0 = Date.now();
  const verdict = await new Promise<VoicemailInfo | 'person' | 'ended'>((resolve) => {
    const off = run.on('audio-frame', (f) => {
      if (f.participantId !== legId) return;
      detector ??= new VoicemailDetector({ sampleRate: f.sampleRate });
      const v = detector.push(f.pcm);
      if (!v) return;
      if (v.kind !== 'machine') return settle('person');
      const at = detector.recordFromMs;
      if (at !== undefined) {
        const reason = v.reason === 'beep' ? 'beep' : 'long-greeting';
        settle({ reason, recordFromMs: at, ...(v.beepHz ? { beepHz: v.beepHz } : {}) });
      } else if (detector.heardMs - v.atMs > RECORD_WAIT_MAX_MS) settle({ reason: 'long-greeting', recordFromMs: detector.heardMs });
    });
    // The emulator sends no frames while a far end is silent (Daily sends silence): wall time then
    // stands for the audio. No verdict by the detector's longest wait: a person (or nobody) is there.
    const timer = setTimeout(() => {
      if (detector?.verdict?.kind !== 'machine') return settle('person');
      timer2 = setTimeout(() => settle({ reason: 'long-greeting', recordFromMs: detector?.heardMs ?? 0 }), RECORD_WAIT_MAX_MS);
    }, VERDICT_WAIT_MS);
    let timer2: NodeJS.Timeout | undefined;
    const settle = (v: VoicemailInfo | 'person' | 'ended') => {
      off();
      clearTimeout(timer);
      clearTimeout(timer2);
      resolve(v);
    };
    void run.ending.done.then(() => settle('ended'));
  });
  await client.receiveAudio(false).catch(() => undefined);
  if (verdict === 'ended') return undefined;
  const v = detector?.verdict;
  const ms = Date.now() - t0;
  if (verdict === 'person') {
    report(run, 'voicemail', `${v?.kind ?? 'unknown'}: ${v?.reason ?? 'no audio'} (${ms} ms)`);
    return undefined;
  }
  report(run, 'voicemail', `machine: ${verdict.reason}${verdict.beepHz ? ` ${verdict.beepHz} Hz` : ''} (${ms} ms)`);
  report(run, 'dialout', 'voicemail');
  return verdict;
}

/**
 * Stage for outbound calls, instead of the forward: dial, wait for the answer, detect voicemail.
 * Resolves with `{ voicemail? }` once the bot may run, or undefined (the call ended).
 */
export async function dialOut(run: CallRun, dial: OutboundDial): Promise<{ voicemail?: VoicemailInfo } | undefined> {
  if (dial.detectVoicemail)
    await run.deps.client.receiveAudio(true).catch((err: unknown) => run.logger.warn({ err }, 'receiveAudio failed'));
  const legId = await dialAndWait(run, dial);
  if (legId === undefined || run.ending.result) return undefined;
  run.callerSessionId = legId;
  run.connected = true;
  run.arrived.resolve();
  run.stage('connected', { callerSessionId: legId, outbound: true });
  report(run, 'dialout', 'answered');
  if (!dial.detectVoicemail) return {};
  const voicemail = await detectVoicemail(run, legId);
  if (run.ending.result) return undefined;
  return voicemail ? { voicemail } : {};
}
