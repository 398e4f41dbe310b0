/**
 * The call object (src/call/call.ts): its transition table, the outcome precedence table
 * (src/core/outcome.ts END_CLAIMS), and its one "call ended" line. Real objects, a real pino logger
 * writing to a stream we read.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { CallIdentity } from '../../src/core/call-identity.js';
import { END_CLAIMS, settleOutcome } from '../../src/core/outcome.js';
import { Call, CALL_TRANSITIONS, IllegalTransitionError, type CallState, type CallTransition } from '../../src/call/call.js';
import { createLogger } from '../../src/core/logger.js';
import { relayWorkerMessage } from '../../src/workers/parent/run-call.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', name: 'test', destination }) };
}

const who = (): CallIdentity => ({
  id: `id-${Math.random().toString(16).slice(2)}`,
  callId: 'daily-call-1',
  callDomain: 'domain-1',
  from: '+15557654321',
  to: '+15550001000',
  sipHeaders: {},
  bot: 'greeter',
  roomName: 'pb-room',
  roomUrl: '',
});

function newCall() {
  const { lines, logger } = capture();
  const call = new Call(who(), { receivedAtMs: Date.now(), logger });
  const transitions: CallTransition[] = [];
  call.on('transition', (t) => transitions.push(t));
  const ended = () => lines.filter((l) => l.msg === 'call ended');
  return { call, lines, transitions, ended };
}

/** Drives a fresh call to `state` along allowed transitions. */
function callIn(state: CallState): Call {
  const { call } = newCall();
  const path: Record<CallState, Array<() => void>> = {
    admitting: [],
    queued: [() => call.advance('queued')],
    starting: [() => call.advance('queued'), () => call.advance('starting')],
    active: [
      () => call.advance('queued'),
      () => call.advance('starting'),
      () => call.workerAssigned({ pid: 1, warmStart: true, hangup: () => undefined }),
    ],
    ending: [() => call.end('room_failed', 'x', 'admission')],
    ended: [() => call.end('room_failed', 'x', 'admission'), () => call.finish()],
  };
  for (const step of path[state]) step();
  expect(call.state).toBe(state);
  return call;
}

describe('call transitions', () => {
  it('a normal call passes admitting → queued → starting → active → ending → ended, one event each, timeline stamped', async () => {
    const { call, transitions, ended } = newCall();
    call.roomCreated('https://x.daily.co/pb-room');
    call.advance('queued');
    call.advance('starting');
    call.workerAssigned({ pid: 4242, warmStart: true, hangup: () => undefined });
    relayWorkerMessage(call, { type: 'stage', patchbayId: call.id, stage: 'joined', atMs: Date.now() });
    expect(call.end('completed', 'bot hung up', 'worker')).toBe(true);
    call.finish();
    expect(transitions.map((t) => `${t.from}→${t.to}`)).toEqual([
      'admitting→queued',
      'queued→starting',
      'starting→active',
      'active→ending',
      'ending→ended',
    ]);
    const t = call.record.timeline;
    for (const k of ['received', 'room_created', 'queued', 'worker_assigned', 'joined', 'ended'] as const)
      expect(t[k], k).toBeTypeOf('number');
    expect(call.record).toMatchObject({
      state: 'ended',
      outcome: 'completed',
      detail: 'bot hung up',
      workerPid: 4242,
      warmStart: true,
      roomUrl: 'https://x.daily.co/pb-room',
    });
    expect(ended()).toHaveLength(1);
    expect(ended()[0]).toMatchObject({
      outcome: 'completed',
      callId: 'daily-call-1',
      id: call.id,
      bot: 'greeter',
      pid: 4242,
      from: '********4321',
    });
  });

  it('worker messages are matched by patchbayId (our id), and one naming another call is ignored', () => {
    const { call, lines } = newCall();
    call.advance('queued');
    call.advance('starting');
    call.workerAssigned({ pid: 9, warmStart: true, hangup: () => undefined });
    relayWorkerMessage(call, { type: 'stage', patchbayId: 'someone-else', stage: 'joined', atMs: 1 });
    relayWorkerMessage(call, { type: 'bot', patchbayId: call.record.callId, kind: 'say', value: 'hi', atMs: 1 });
    expect(call.record.timeline.joined).toBeUndefined();
    expect(call.record.botEvents).toEqual([]);
    expect(lines.filter((l) => l.msg === 'worker message about another call; ignored')).toHaveLength(2);
    relayWorkerMessage(call, { type: 'bot', patchbayId: call.id, kind: 'say', value: 'hi', atMs: 2 });
    expect(call.record.botEvents).toEqual([{ kind: 'say', value: 'hi', atMs: 2 }]);
  });

  it.each(Object.keys(CALL_TRANSITIONS) as CallState[])('from %s, every transition not in the table throws and changes nothing', (from) => {
    const all = Object.keys(CALL_TRANSITIONS) as CallState[];
    for (const to of all.filter((s) => !CALL_TRANSITIONS[from].includes(s))) {
      const call = callIn(from);
      const before = JSON.stringify(call.record);
      expect(() => call.advance(to), `${from} → ${to}`).toThrow(IllegalTransitionError);
      expect(JSON.stringify(call.record)).toBe(before);
    }
  });

  it('the table allows exactly the documented lifecycle', () => {
    expect(CALL_TRANSITIONS).toEqual({
      admitting: ['queued', 'ending'],
      queued: ['starting', 'ending'],
      starting: ['active', 'ending'],
      active: ['ending'],
      ending: ['ended'],
      ended: [],
    });
  });
});

describe('outcome precedence', () => {
  it('a worker outcome arriving after a reconcile outcome is detail: one outcome, one "call ended" line', () => {
    const { call, ended, transitions } = newCall();
    const hangups: string[] = [];
    call.advance('queued');
    call.advance('starting');
    call.workerAssigned({ pid: 7, warmStart: false, hangup: (o) => hangups.push(o) });
    expect(call.end('caller_hangup', 'dialin.stopped webhook (event e1)', 'reconcile')).toBe(true);
    // Reconcile asked the worker to end the call with its outcome.
    expect(hangups).toEqual(['caller_hangup']);
    expect(call.state).toBe('ending');
    // The worker then dies before answering: the supervisor's outcome is only detail.
    expect(call.end('worker_crashed', 'worker exited (SIGKILL) before reporting an outcome', 'supervisor')).toBe(false);
    call.finish();
    expect(call.record.outcome).toBe('caller_hangup');
    expect(call.record.detail).toBe(
      'dialin.stopped webhook (event e1); then worker_crashed by supervisor (worker exited (SIGKILL) before reporting an outcome)',
    );
    expect(transitions.filter((t) => t.to === 'ending')).toHaveLength(1);
    expect(ended()).toHaveLength(1);
    expect(ended()[0]).toMatchObject({ outcome: 'caller_hangup' });
  });

  it('the same outcome claimed again adds nothing', () => {
    const { call } = newCall();
    call.advance('queued');
    call.advance('starting');
    call.workerAssigned({ pid: 7, warmStart: false, hangup: () => undefined });
    call.end('caller_hangup', 'meeting.ended webhook', 'reconcile');
    call.end('caller_hangup', 'ended by the service', 'worker');
    expect(call.record.detail).toBe('meeting.ended webhook');
  });

  it("a drain request is not definitive: the worker's own outcome wins, the request stays as detail", () => {
    const { call } = newCall();
    const hangups: string[] = [];
    call.advance('queued');
    call.advance('starting');
    call.workerAssigned({ pid: 7, warmStart: false, hangup: (o) => hangups.push(o) });
    expect(call.end('shutdown', 'ended by the service', 'drain')).toBe(false);
    expect(hangups).toEqual(['shutdown']);
    expect(call.state).toBe('active');
    expect(call.record.outcome).toBeUndefined();
    // Its done was already on its way.
    expect(call.end('completed', 'caller pressed 1', 'worker')).toBe(true);
    call.finish();
    expect(call.record).toMatchObject({
      outcome: 'completed',
      detail: 'caller pressed 1; requested shutdown by drain (ended by the service)',
    });
  });

  it('a request nobody answers still ends the call with the requested outcome', () => {
    const { call, ended } = newCall();
    call.advance('queued');
    call.advance('starting');
    call.workerAssigned({ pid: 7, warmStart: false, hangup: () => undefined });
    call.end('max_duration', 'outlived every deadline', 'backstop');
    call.finish();
    expect(call.record.outcome).toBe('max_duration');
    expect(ended()).toHaveLength(1);
  });

  it('claims after the end are ignored', () => {
    const call = callIn('ended');
    expect(call.end('completed', 'late', 'worker')).toBe(false);
    expect(call.record).toMatchObject({ outcome: 'room_failed', detail: 'x' });
  });

  it('settleOutcome: the first definitive claim wins whatever its position; requests only while nothing decided', () => {
    const definitive = Object.entries(END_CLAIMS)
      .filter(([, v]) => v.definitive)
      .map(([k]) => k);
    expect(definitive.sort()).toEqual(['admission', 'fleet', 'queue', 'reconcile', 'supervisor', 'worker']);
    expect(settleOutcome([{ outcome: 'shutdown', by: 'drain' }])).toBeUndefined();
    expect(settleOutcome([{ outcome: 'shutdown', by: 'drain' }], true)?.outcome).toBe('shutdown');
    const s = settleOutcome([
      { outcome: 'max_duration', by: 'backstop' },
      { outcome: 'bot_removed', detail: 'meeting.ended webhook', by: 'reconcile' },
      { outcome: 'completed', by: 'worker' },
    ]);
    expect(s).toEqual({
      outcome: 'bot_removed',
      by: 'reconcile',
      detail: 'meeting.ended webhook; requested max_duration by backstop; then completed by worker',
    });
  });
});
