/**
 * Warms Node's fetch (undici) in a fresh process: one JSON POST to a throw-away HTTP server on
 * 127.0.0.1. Node loads its fetch implementation on first use, and the first HTTP/1 request also
 * compiles the client's parser and connection path: ≈ 35–70 ms of CPU in a new process, measured
 * on 2026-12-07 (a `data:` URL warms only the first part: the first real request still took 16 ms,
 * against 3.6 ms after this). A worker pays it before it is ready, not on a held caller's
 * `pinlessCallUpdate` — where 50 workers paying it at once on 2 cores cost ≈ 190 ms (issue 27).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function warmFetch(): Promise<void> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/warm-up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"warm":true}',
      signal: AbortSignal.timeout(5_000),
    });
    await res.json();
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
