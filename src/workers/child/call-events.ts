/**
 * The call client's events and the parent's `hangup`, one named handler each, for one call in a
 * worker. Listeners are registered before join: `dialin-ready` may fire the moment join resolves.
 */
import type { CallClientEventMap as Events } from '../../daily/call-client.js';
import { giveDigit, giveTranscript } from './call-bot.js';
import type { CallRun } from './call-state.js';

export function listenToCall(run: CallRun): void {
  const { on } = run;
  on('dialin-ready', (e) => onDialinReady(run, e));
  on('dialin-connected', (e) => onDialinConnected(run, e));
  on('dialin-stopped', () => callerLeft(run, 'dialin-stopped'));
  on('participant-left', (e) => onParticipantLeft(run, e));
  on('dialin-error', (e) => onDialinError(run, e));
  on('dialin-warning', (e) => onDialinWarning(run, e));
  on('error', (e) => onClientError(run, e));
  on('left-meeting', ({ reason }) => run.ending.end({ kind: 'left-meeting', reason }));
  on('dtmf-event', (e) => onDtmf(run, e));
  on('transcription-message', (e) => onTranscription(run, e));
}

/** The parent's `hangup` (or shutdown, or an error that escaped the bot); returns the unsubscribe. */
export function listenToHangup(run: CallRun): () => void {
  const { hangupSignal, hangupDetail } = run.deps;
  const onHangup = () => run.ending.end({ kind: 'hangup', reason: hangupSignal.reason, detail: hangupDetail?.() });
  if (hangupSignal.aborted) onHangup();
  else hangupSignal.addEventListener('abort', onHangup, { once: true });
  return () => hangupSignal.removeEventListener('abort', onHangup);
}

function onDialinReady(run: CallRun, { sipEndpoint }: Events['dialin-ready']): void {
  run.readyCount++;
  if (run.readyCount === 1) run.ready.resolve(sipEndpoint);
  else run.logger.debug({ sipEndpoint, readyCount: run.readyCount }, 'dialin-ready again (another SIP endpoint); already forwarding once');
}

function onDialinConnected(run: CallRun, e: Events['dialin-connected']): void {
  run.callerSessionId ??= e.sessionId;
  if (!run.connected) {
    run.connected = true;
    run.arrived.resolve();
  }
}

function callerLeft(run: CallRun, why: string): void {
  run.stage('caller_left', { why });
  run.ending.end({ kind: 'caller-left', why, connected: run.connected, transferTarget: run.session?.transferTarget });
}

function onParticipantLeft(run: CallRun, { participant }: Events['participant-left']): void {
  if (participant.local) return;
  if (participant.sessionId === run.callerSessionId) callerLeft(run, 'participant-left');
}

/** Daily's errors and warnings also go to the call's record (its event log). */
function report(run: CallRun, kind: 'dialin_error' | 'dialin_warning', value: string): void {
  run.deps.send({ type: 'bot', patchbayId: run.deps.call.id, kind, value, atMs: Date.now() });
}

function onDialinError(run: CallRun, { errorMsg }: Events['dialin-error']): void {
  run.logger.warn({ errorMsg }, 'dialin-error');
  report(run, 'dialin_error', errorMsg);
  if (!run.connected) run.ending.end({ kind: 'dialin-error', errorMsg });
}

function onDialinWarning(run: CallRun, { errorMsg }: Events['dialin-warning']): void {
  run.logger.warn({ errorMsg }, 'dialin-warning');
  report(run, 'dialin_warning', errorMsg);
}

function onClientError(run: CallRun, { message, fatal, code }: Events['error']): void {
  run.logger.warn({ err: message, fatal }, 'call client error');
  if (fatal) run.ending.end({ kind: 'client-error', code, message });
}

function onDtmf(run: CallRun, { tone, sessionId }: Events['dtmf-event']): void {
  // Keys from another phone participant (a dialled-out agent) are not the caller's.
  if (sessionId !== undefined && run.callerSessionId !== undefined && sessionId !== run.callerSessionId) return;
  if (!run.session) {
    if (run.connected && run.earlyDigits.length < 64) run.earlyDigits.push(tone);
    return;
  }
  giveDigit(run, run.session, tone);
}

function onTranscription(run: CallRun, { text, isFinal, participantId }: Events['transcription-message']): void {
  const { session } = run;
  if (!session || participantId === undefined) return;
  if (run.callerSessionId && participantId !== run.callerSessionId) return;
  if (!isFinal) return session.pushInterim(text);
  giveTranscript(run, session, text);
}
