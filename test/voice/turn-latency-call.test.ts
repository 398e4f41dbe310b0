/**
 * Per-turn latency in production (issue 23, item 5) and TTS chosen per bot, on one real stack
 * (emulator, app, forked worker; records in SQLite, an OpenTelemetry SDK in this process): a
 * cascade call of two turns — the caller speaks (espeak-ng audio, the bot's VAD hears them stop),
 * Daily's transcript, the LLM stand-in streams, the bot's own TTS vendor (ElevenLabs stand-in,
 * while the service's TTS_PROVIDER is text-only) speaks. Each turn appears with all five stages
 * in the call record, /calls (p50/p95) and its CSV, the metrics endpoint and the call's trace; the
 * dashboard draws a bar per turn in Chromium (screenshot test-output/turns.png; `UPDATE_SCREENSHOTS=1`
 * writes docs/images/turns.png).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVoiceStandIns, type VoiceStandIns } from '../../src/testing/voice-standins.js';
import { startElevenLabsStandIn, type ElevenLabsStandIn } from '../../src/testing/elevenlabs-standin.js';
import type { CallRecord } from '../../src/admission/dispatcher.js';
import { NUMBER, startStack, type Stack } from '../helpers/stack.js';
import { FIXTURE_BOTS } from '../helpers/ops.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'turn-latency-token-0123456789abcdef';
const CASCADE = ['speechEnd', 'transcript', 'llmFirstToken', 'ttsFirstAudio', 'firstFrameSent'];
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const dir = mkdtempSync(path.join(tmpdir(), 'patchbay-turns-'));
const auth = { authorization: `Bearer ${TOKEN}` };

interface StoredView {
  id: string;
  events: Array<{ kind: string; value: string; atMs: number }>;
  turnLatency: { turns: number; p50Ms: number; p95Ms: number } | null;
}

describe('per-turn latency of a cascade call, with the bot’s own TTS vendor', () => {
  let stack: Stack;
  let llm: VoiceStandIns;
  let eleven: ElevenLabsStandIn;
  let browser: Browser;
  let rec: CallRecord;

  beforeAll(async () => {
    trace.setGlobalTracerProvider(provider);
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install -y chromium; .ci/run does)`);
    [llm, eleven, browser] = await Promise.all([
      startVoiceStandIns({
        firstTokenMs: 150,
        tokensPerSec: 40,
        reply: (m) => (/close/.test(m.at(-1)?.content ?? '') ? 'We close at six in the evening.' : 'We open at nine in the morning.'),
      }),
      startElevenLabsStandIn({ firstChunkMs: 120, chunkMs: 100, chunkGapMs: 10 }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] }),
    ]);
    stack = await startStack({
      env: {
        BOTS_DIR: FIXTURE_BOTS,
        DASHBOARD_TOKEN: TOKEN,
        CALL_RECORDS_PATH: path.join(dir, 'calls.db'),
        TTS_PROVIDER: 'text',
        OPENAI_API_KEY: 'sk-standin',
        LLM_BASE_URL: llm.baseUrl,
        ELEVENLABS_API_KEY: eleven.apiKey,
        ELEVENLABS_BASE_URL: eleven.baseUrl,
        WORKER_INIT_TIMEOUT_MS: '60000',
        HOLD_BUDGET_MS: '120000',
      },
      runtime: { route: () => ({ bot: 'turn-timing' }), preloadBots: ['turn-timing'] },
    });
    const call = stack.emulator.placeCall({
      to: NUMBER,
      from: '+15557654321',
      script: [
        { waitFor: 'say', match: '^ready' },
        { speak: 'what time do you open' },
        { waitFor: 'say', match: 'open at nine', timeoutMs: 20_000 },
        { wait: 1_500 },
        { speak: 'and when do you close' },
        { waitFor: 'say', match: 'close at six', timeoutMs: 20_000 },
        { wait: 3_000 },
      ],
    });
    rec = await stack.waitEnded(call.callId, 60_000);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    await Promise.all([llm?.close(), eleven?.close()]);
    await provider.shutdown();
    trace.disable();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each turn has its five stages, in order, in the call and its record; /calls and the CSV give p50/p95', async () => {
    expect(rec.outcome).toBe('completed');
    expect(rec.turns?.map((t) => t.index)).toEqual([1, 2]);
    for (const t of rec.turns!) {
      expect(Object.keys(t.stages).sort()).toEqual([...CASCADE].sort());
      const offsets = CASCADE.map((s) => t.stages[s as keyof typeof t.stages]!);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      // The LLM stand-in answers its first token after 150 ms, the TTS stand-in its first audio 120 ms after the text.
      expect(t.stages.llmFirstToken! - t.stages.transcript!).toBeGreaterThanOrEqual(140);
      expect(t.stages.ttsFirstAudio! - t.stages.llmFirstToken!).toBeGreaterThanOrEqual(110);
      expect(t.totalMs).toBe(t.stages.firstFrameSent);
    }
    // The bot's own TTS spoke (ElevenLabs) although the service's is text-only.
    const sent = eleven.messages.map((m) => String(m.text ?? '')).join(' ');
    expect(sent).toContain('open at nine');
    expect(sent).toContain('close at six');

    let stored: StoredView | undefined;
    await expect
      .poll(
        async () => {
          const res = await fetch(`${stack.url}/calls/${rec.id}`, { headers: auth });
          stored = res.ok ? ((await res.json()) as { call: StoredView }).call : undefined;
          return stored?.events.filter((e) => e.kind === 'turn_latency').length ?? 0;
        },
        { timeout: 10_000 },
      )
      .toBe(2);
    const entries = stored!.events.filter((e) => e.kind === 'turn_latency');
    // Kept readable (the PII masker leaves stage times alone), every stage present.
    for (const [i, e] of entries.entries()) {
      expect(e.value).toMatch(
        new RegExp(`^#${i + 1} speechEnd=0 transcript=\\d+ llmFirstToken=\\d+ ttsFirstAudio=\\d+ firstFrameSent=\\d+$`),
      );
    }
    const totals = rec.turns!.map((t) => t.totalMs).sort((a, b) => a - b);
    expect(stored!.turnLatency).toEqual({ turns: 2, p50Ms: totals[0], p95Ms: totals[1] });

    const list = (await (await fetch(`${stack.url}/calls?bot=turn-timing`, { headers: auth })).json()) as { calls: StoredView[] };
    expect(list.calls.find((c) => c.id === rec.id)?.turnLatency).toEqual(stored!.turnLatency);
    const csv = await (await fetch(`${stack.url}/calls?bot=turn-timing&format=csv`, { headers: auth })).text();
    const [head, row] = csv.trim().split('\r\n');
    const cols = head!.split(',');
    const cells = row!.match(/("([^"]|"")*"|[^,]*)(,|$)/g)!.map((c) => c.replace(/,$/, ''));
    expect(cells[cols.indexOf('turns')]).toBe('2');
    expect(Number(cells[cols.indexOf('turnP50Ms')])).toBe(totals[0]);
    expect(Number(cells[cols.indexOf('turnP95Ms')])).toBe(totals[1]);
  });

  it('the metrics endpoint has each stage and the total per bot; the trace a `turn` span per turn', async () => {
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    for (const stage of [...CASCADE.slice(1), 'total']) {
      expect(text, stage).toContain(`patchbay_turn_latency_seconds_count{stage="${stage}",bot="turn-timing"} 2`);
    }
    expect(text).not.toContain('patchbay_turn_latency_seconds_count{stage="speechEnd"');

    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === rec.traceId);
    const root = spans.find((s) => s.name === 'call')!;
    const turns = spans.filter((s) => s.name === 'turn');
    expect(turns).toHaveLength(2);
    for (const [i, s] of turns.entries()) {
      expect(s.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
      expect(s.attributes['patchbay.turn.index']).toBe(i + 1);
      expect(s.attributes['patchbay.turn.total_ms']).toBe(rec.turns![i]!.totalMs);
      expect(CASCADE).toContain(s.attributes['patchbay.turn.slowest']);
      expect(s.events.map((e) => e.name)).toEqual(CASCADE);
    }
  });

  it('the dashboard draws a bar per turn with its slow stage marked (Chromium)', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${stack.url}/dashboard?token=${TOKEN}`);
    await page.locator(`#recent tbody tr[data-id="${rec.id}"]`).click({ timeout: 20_000 });
    const bars = page.locator('#detail-turns li.turn');
    await expect.poll(() => bars.count(), { timeout: 20_000 }).toBe(2);
    for (const [i, t] of rec.turns!.entries()) {
      const bar = bars.nth(i);
      expect(await bar.getAttribute('data-slow')).toBe(t.slowest);
      expect(await bar.locator('.tseg').count()).toBe(4);
      expect(await bar.locator(`.tseg.slow[data-stage="${t.slowest}"]`).count()).toBe(1);
      expect(await bar.locator('.turn-total').textContent()).toBe(`${t.totalMs} ms`);
    }
    // The stage times are not in the conversation.
    expect(await page.locator('#detail-events li[data-kind="turn_latency"]').count()).toBe(0);
    mkdirSync('test-output', { recursive: true });
    const shot = process.env.UPDATE_SCREENSHOTS === '1' ? 'docs/images/turns.png' : 'test-output/turns.png';
    await page.locator('#detail').screenshot({ path: shot });
    expect(errors).toEqual([]);
  }, 60_000);
});
