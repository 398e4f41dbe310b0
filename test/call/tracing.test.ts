/**
 * One OpenTelemetry trace per call: with an SDK registered in this process (BasicTracerProvider +
 * InMemorySpanExporter), a real call through the in-process stack (real emulator, real workers)
 * yields one root `call` span with the stage spans as its children, and the trace id is in the
 * call's record and in its "call ended" log line.
 */
import { Writable } from 'node:stream';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const lines: Array<Record<string, unknown>> = [];
const destination = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  },
});

const hrMs = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;

describe('tracing', () => {
  let stack: Stack;
  beforeAll(async () => {
    trace.setGlobalTracerProvider(provider);
    stack = await startStack({ logger: createLogger({ level: 'info', name: 'test', destination }) });
  });
  afterAll(async () => {
    await stack?.close();
    await provider.shutdown();
    trace.disable();
  });

  it('a connected call is one trace: root `call` and its stage spans, the trace id in the record and the log', async () => {
    const call = stack.emulator.placeCall({
      to: NUMBER,
      from: '+15557654321',
      script: [{ waitFor: 'say', match: 'Hello' }, { hangup: true }],
    });
    await call.ended;
    const rec = await stack.waitEnded(call.callId);
    expect(rec.outcome).toBe('caller_hangup');
    expect(rec.traceId).toMatch(/^[0-9a-f]{32}$/);

    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === rec.traceId);
    const root = spans.find((s) => s.name === 'call')!;
    expect(root).toBeDefined();
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.attributes).toMatchObject({
      'patchbay.call.id': rec.id,
      'daily.call_id': rec.callId,
      'patchbay.bot': rec.bot,
      'patchbay.outcome': 'caller_hangup',
    });
    // No caller number in the trace.
    expect(JSON.stringify(root.attributes)).not.toContain('5557654321');
    // The root spans the call: from the webhook's arrival to the end.
    expect(hrMs(root.startTime)).toBeCloseTo(rec.timeline.received!, -1);
    expect(hrMs(root.endTime)).toBeCloseTo(rec.timeline.ended!, -1);
    expect(root.events.map((e) => e.name)).toEqual(
      expect.arrayContaining([
        'state.queued',
        'state.starting',
        'state.active',
        'state.ending',
        'state.ended',
        'stage.dialin_ready',
        'bot.say',
      ]),
    );

    const children = spans.filter((s) => s !== root);
    for (const s of children) expect(s.parentSpanContext?.spanId, s.name).toBe(root.spanContext().spanId);
    const names = children.map((s) => s.name);
    for (const n of ['webhook', 'room', 'queue', 'worker', 'join', 'dialin-ready', 'forward', 'connected', 'bot', 'end'])
      expect(names, n).toContain(n);
    expect(new Set(names).size).toBe(names.length);
    const byName = (n: string): ReadableSpan => children.find((s) => s.name === n)!;
    // Stage spans take their times from the timeline.
    expect(hrMs(byName('dialin-ready').endTime)).toBeCloseTo(rec.timeline.dialin_ready!, -1);
    expect(hrMs(byName('forward').startTime)).toBeCloseTo(rec.timeline.forward_sent!, -1);
    for (const s of children) expect(hrMs(s.endTime)).toBeGreaterThanOrEqual(hrMs(s.startTime));

    // And in the stored record, as GET /calls answers it.
    await stack.rt.records!.flush();
    const res = await fetch(`${stack.url}/calls?limit=10`);
    const stored = ((await res.json()) as { calls: Array<{ id: string; traceId: string | null }> }).calls.find((c) => c.id === rec.id);
    expect(stored?.traceId).toBe(rec.traceId);

    const endedLines = lines.filter((l) => l.msg === 'call ended' && l.id === rec.id);
    expect(endedLines).toHaveLength(1);
    expect(endedLines[0]).toMatchObject({ traceId: rec.traceId, callId: rec.callId });
  });

  it('each call has its own trace', async () => {
    const a = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
    await a.ended;
    const b = stack.emulator.placeCall({ to: NUMBER, script: [{ waitFor: 'say' }, { hangup: true }] });
    await b.ended;
    const [ra, rb] = await Promise.all([stack.waitEnded(a.callId), stack.waitEnded(b.callId)]);
    expect(ra.traceId).toBeDefined();
    expect(ra.traceId).not.toBe(rb.traceId);
    const roots = exporter
      .getFinishedSpans()
      .filter((s) => s.name === 'call' && [ra.traceId, rb.traceId].includes(s.spanContext().traceId));
    expect(roots).toHaveLength(2);
  });
});

describe('tracing off (no SDK registered)', () => {
  it('has no trace id and costs nothing: the call object works the same', async () => {
    const { Call } = await import('../../src/call/call.js');
    const c = new Call(
      { id: 'x', callId: 'y', callDomain: 'd', from: '', to: '', sipHeaders: {}, bot: 'b', roomName: 'r', roomUrl: '' },
      { receivedAtMs: Date.now(), logger: createLogger({ level: 'silent', name: 't' }) },
    );
    expect(c.record.traceId).toBeUndefined();
  });
});
