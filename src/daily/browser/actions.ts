/**
 * The call-client actions that are one daily-js method call each, in the page (names from the
 * vocabulary table, src/daily/call-client-vocab.ts). The client supplies `invoke`.
 */
import type { CallClient, CanReceiveAudio, DialOutOptions } from '../call-client.js';
import { CALL_CLIENT_ACTIONS } from '../call-client-vocab.js';
import { DailyClientError } from './errors.js';

export abstract class DailyJsActions implements Pick<
  CallClient,
  | 'sendDTMF'
  | 'sipCallTransfer'
  | 'sipRefer'
  | 'stopTranscription'
  | 'sendAppMessage'
  | 'ejectParticipant'
  | 'startDialOut'
  | 'stopDialOut'
  | 'setCanReceive'
> {
  /** Calls daily-js's `method(...args)` in the page. */
  protected abstract invoke(method: string, args: unknown[]): Promise<void>;
  /** The same, resolving with what the method returned. */
  protected abstract invokeValue(method: string, args: unknown[]): Promise<unknown>;

  sendDTMF(opts: { sessionId: string; tones: string }): Promise<void> {
    return this.invoke(CALL_CLIENT_ACTIONS.sendDTMF.daily, [{ sessionId: opts.sessionId, tones: opts.tones }]);
  }

  sipCallTransfer(opts: { sessionId: string; toEndPoint: string }): Promise<void> {
    return this.invoke(CALL_CLIENT_ACTIONS.sipCallTransfer.daily, [{ sessionId: opts.sessionId, toEndPoint: opts.toEndPoint }]);
  }

  sipRefer(opts: { sessionId: string; toEndPoint: string }): Promise<void> {
    return this.invoke(CALL_CLIENT_ACTIONS.sipRefer.daily, [{ sessionId: opts.sessionId, toEndPoint: opts.toEndPoint }]);
  }

  stopTranscription(): Promise<void> {
    return this.invoke(CALL_CLIENT_ACTIONS.stopTranscription.daily, []);
  }

  sendAppMessage(data: unknown, to?: string): Promise<void> {
    return this.invoke(CALL_CLIENT_ACTIONS.sendAppMessage.daily, [data, to ?? '*']);
  }

  ejectParticipant(sessionId: string): Promise<void> {
    return this.invoke(CALL_CLIENT_ACTIONS.ejectParticipant.daily, [sessionId, { eject: true }]);
  }

  async startDialOut(opts: DialOutOptions): Promise<{ sessionId: string }> {
    const r = (await this.invokeValue(CALL_CLIENT_ACTIONS.startDialOut.daily, [opts])) as { session?: { sessionId?: unknown } } | null;
    const sessionId = r?.session?.sessionId;
    if (typeof sessionId !== 'string') throw new DailyClientError('daily_startDialOut_failed', 'startDialOut() returned no session');
    return { sessionId };
  }

  stopDialOut(sessionId: string): Promise<void> {
    return this.invoke(CALL_CLIENT_ACTIONS.stopDialOut.daily, [{ sessionId }]);
  }

  setCanReceive(sessionId: string, canReceive: CanReceiveAudio): Promise<void> {
    const audio = (v: boolean) => ({ audio: v });
    const permission = {
      ...(canReceive.base === undefined ? {} : { base: audio(canReceive.base) }),
      ...(canReceive.byParticipantId
        ? { byParticipantId: Object.fromEntries(Object.entries(canReceive.byParticipantId).map(([id, v]) => [id, audio(v)])) }
        : {}),
    };
    return this.invoke(CALL_CLIENT_ACTIONS.setCanReceive.daily, [sessionId, { updatePermissions: { canReceive: permission } }]);
  }
}
