/** daily-js event → CallClientEventMap mapping, and join failure normalisation (no browser). */
import { describe, expect, it } from 'vitest';
import { joinErrorFrom } from '../../../src/daily/browser/client.js';
import { mapDailyEvent, toCallParticipant } from '../../../src/daily/browser/events.js';

describe('mapDailyEvent', () => {
  it('participants: isSip from participantType, local flag, names', () => {
    expect(
      toCallParticipant({ session_id: 's1', user_name: '+1555', user_id: 'u1', local: false, participantType: 'pstn-dial-in' }),
    ).toEqual({ sessionId: 's1', userName: '+1555', userId: 'u1', local: false, isSip: true });
    expect(toCallParticipant({ session_id: 'b', user_name: 'bot', local: true, participantType: 'unknown' })).toEqual({
      sessionId: 'b',
      userName: 'bot',
      local: true,
      isSip: false,
    });
    // No participantType: unknown, so isSip is left out rather than guessed.
    expect(toCallParticipant({ session_id: 'x', local: false })).toEqual({ sessionId: 'x', local: false });
  });

  it('joined-meeting lists participants and finds the local one', () => {
    expect(
      mapDailyEvent({ action: 'joined-meeting', participants: { local: { session_id: 'me', local: true, user_name: 'bot' } } }),
    ).toEqual({
      event: 'joined-meeting',
      payload: { localSessionId: 'me', participants: [{ sessionId: 'me', local: true, userName: 'bot' }] },
    });
  });

  it('transcription isFinal: rawResponse.is_final, else true', () => {
    const base = { action: 'transcription-message', participantId: 'p', text: 'hi', timestamp: '2026-01-01T00:00:00.000Z' };
    expect(mapDailyEvent({ ...base, rawResponse: { is_final: false } })?.payload).toEqual({
      participantId: 'p',
      text: 'hi',
      isFinal: false,
      timestampMs: Date.parse('2026-01-01T00:00:00.000Z'),
    });
    expect(mapDailyEvent({ ...base, rawResponse: {} })?.payload).toMatchObject({ isFinal: true });
    expect(mapDailyEvent({ ...base })?.payload).toMatchObject({ isFinal: true });
  });

  it('errors: `error` is fatal with daily-js type as code; nonfatal-error is not fatal', () => {
    expect(mapDailyEvent({ action: 'error', errorMsg: 'boom', error: { type: 'connection-error', msg: 'x' } })).toEqual({
      event: 'error',
      payload: { message: 'boom', fatal: true, code: 'connection-error' },
    });
    expect(mapDailyEvent({ action: 'nonfatal-error', type: 'audio-processor-error', errorMsg: 'meh' })).toEqual({
      event: 'error',
      payload: { message: 'meh', fatal: false, code: 'audio-processor-error' },
    });
  });

  it('dial-in, dtmf, app-message, left-meeting; other events are dropped', () => {
    expect(mapDailyEvent({ action: 'dialin-ready', sipEndpoint: 'sip:a@b', provider: 'daily' })).toEqual({
      event: 'dialin-ready',
      payload: { sipEndpoint: 'sip:a@b' },
    });
    expect(mapDailyEvent({ action: 'dialin-stopped', sessionId: 's', sipEndpoint: 'sip:a@b', provider: 'daily' })).toEqual({
      event: 'dialin-stopped',
      payload: { sessionId: 's', sipEndpoint: 'sip:a@b' },
    });
    expect(mapDailyEvent({ action: 'dtmf-event', tone: '#', volume: 1, method: 'sip-info' })).toEqual({
      event: 'dtmf-event',
      payload: { tone: '#' },
    });
    expect(mapDailyEvent({ action: 'app-message', data: [1], fromId: 'f' })).toEqual({
      event: 'app-message',
      payload: { data: [1], fromId: 'f' },
    });
    expect(mapDailyEvent({ action: 'left-meeting' })).toEqual({ event: 'left-meeting', payload: { reason: 'left' } });
    expect(mapDailyEvent({ action: 'participant-updated', participant: {} })).toBeNull();
    expect(mapDailyEvent({ action: 'track-started' })).toBeNull();
  });
});

describe('joinErrorFrom', () => {
  it("names the bundle URL when Daily's call machine could not be loaded (daily-js rejects with a string)", () => {
    const url = 'https://c.dailywebrtc.net/call-machine/versioned/0.92.2/static/call-machine-object-bundle.js';
    const e = joinErrorFrom(
      `Failed to load call object bundle ${url}: TypeError: Failed to fetch`,
      {
        action: 'error',
        errorMsg: 'x',
        error: { type: 'connection-error', msg: 'Failed to load call object bundle.', details: { on: 'load', bundleUrl: url } },
      },
      'fallback',
    );
    expect(e.code).toBe('daily_bundle_unavailable');
    expect(e.retryable).toBe(true);
    expect(e.message).toBe(
      `Daily's call-machine bundle could not be loaded from ${url}: Failed to load call object bundle ${url}: TypeError: Failed to fetch`,
    );
  });

  it('token/room problems are not retryable; unknown failures are', () => {
    expect(joinErrorFrom('Meeting has ended', { errorMsg: 'Meeting has ended', error: { type: 'exp-room' } }, 'b')).toMatchObject({
      code: 'daily_join_exp-room',
      retryable: false,
    });
    expect(joinErrorFrom('something odd', undefined, 'b')).toMatchObject({ code: 'daily_join_failed', retryable: true });
  });
});
