/**
 * The worker's tiny static HTTP server on 127.0.0.1: the bot page, daily-js's `dist/daily.js`
 * from node_modules (no CDN for the front end), the bridge script and the capture worklet.
 * daily-js needs a secure-context origin (http://127.0.0.1 is one; about:blank is not).
 */
import { readFile } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { BRIDGE_JS, CAPTURE_WORKLET_JS, PAGE_HTML } from './page-assets.js';

const require = createRequire(import.meta.url);

export interface StaticServer {
  /** e.g. http://127.0.0.1:41234 */
  readonly origin: string;
  close(): Promise<void>;
}

let dailyJsCache: Promise<Buffer> | undefined;

/** daily-js's UMD build, read once per process. */
export function readDailyJs(): Promise<Buffer> {
  dailyJsCache ??= readFile(require.resolve('@daily-co/daily-js/dist/daily.js'));
  return dailyJsCache;
}

/** `onUpgrade` takes WebSocket upgrades (the page's audio socket); without it they are refused. */
export async function startStaticServer(onUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): Promise<StaticServer> {
  const dailyJs = await readDailyJs();
  const routes: Record<string, { type: string; body: string | Buffer }> = {
    '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
    '/daily.js': { type: 'text/javascript; charset=utf-8', body: dailyJs },
    '/bridge.js': { type: 'text/javascript; charset=utf-8', body: BRIDGE_JS },
    '/capture-worklet.js': { type: 'text/javascript; charset=utf-8', body: CAPTURE_WORKLET_JS },
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const route = req.method === 'GET' ? routes[url.pathname] : undefined;
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': route.type, 'cache-control': 'no-store' }).end(route.body);
  });
  server.on('upgrade', (req, socket, head) => {
    if (onUpgrade) onUpgrade(req, socket, head);
    else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
