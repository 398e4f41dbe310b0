// One bench "bot" process for bench/daily-browser.ts: what a worker does with its call client
// (prepare, join, two-way audio), driven over IPC. Plain JS so it can run compiled code
// (`node bench/lib/browser-bot.mjs <dir>/daily/browser/client.js`) or the sources under tsx.
// It also loads the modules an idle worker loads (call runner, SDK, bot loader), so its own
// memory is close to a real worker's.
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const clientPath = process.argv[2];
const srcDir = path.resolve(path.dirname(clientPath), '../..');
const ext = path.extname(clientPath);
const { DailyBrowserCallClient } = await import(pathToFileURL(clientPath).href);
const { pino } = await import('pino');
for (const m of ['workers/child/call-runner', 'workers/child/bot-loader', 'voice/tts', 'voice/llm', 'core/logger']) {
  await import(pathToFileURL(path.join(srcDir, `${m}${ext}`)).href).catch(() => undefined);
}
const logger = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'silent' });

let client;
let framesIn = 0;
const send = (m) => process.send?.(m);

process.on('message', async (m) => {
  try {
    if (m.type === 'prepare') {
      client = new DailyBrowserCallClient({
        apiUrl: 'http://127.0.0.1:9/v1',
        logger,
        bundleUrl: m.bundleUrl,
        ...(m.wsEndpoint ? { sharedBrowser: { wsEndpoint: m.wsEndpoint, browserPid: m.browserPid } } : {}),
      });
      client.on('audio-frame', () => framesIn++);
      const t = performance.now();
      await client.prepare();
      send({ type: 'prepared', ms: performance.now() - t });
    } else if (m.type === 'join') {
      const t = performance.now();
      await client.join({ roomUrl: m.roomUrl, token: 't', userName: `bench-${process.pid}`, timeoutMs: 30_000 });
      send({ type: 'joined', ms: performance.now() - t });
    } else if (m.type === 'audio') {
      // 16 kHz both ways: receive the caller's tone, send a continuous tone in 200 ms clips (2 in flight).
      await client.receiveAudio(true);
      const rate = 16_000;
      const clip = Int16Array.from({ length: rate / 5 }, (_, i) => Math.round(6000 * Math.sin((2 * Math.PI * 300 * i) / rate)));
      const until = Date.now() + m.seconds * 1000;
      framesIn = 0;
      const inFlight = new Set();
      while (Date.now() < until) {
        const p = client.sendAudio({ pcm: clip, sampleRate: rate }).finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (inFlight.size >= 2) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      await client.receiveAudio(false);
      send({ type: 'audioDone', framesIn, pagePids: await client.pagePids?.() });
    } else if (m.type === 'pids') {
      send({ type: 'pids', pagePids: (await client.pagePids?.()) ?? [] });
    } else if (m.type === 'close') {
      await client?.close();
      send({ type: 'closed' });
      process.exit(0);
    }
  } catch (err) {
    send({ type: 'error', error: String(err?.stack ?? err) });
  }
});
send({ type: 'up' });
