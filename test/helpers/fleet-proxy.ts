/**
 * A TCP proxy in front of the test's redis-server that can make Redis slow (not down): every chunk
 * Redis sends back is held `delayMs` before it reaches the replica, in order. `delayMs = 0` passes
 * it at once.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  url: string;
  delayMs: number;
  close(): Promise<void>;
}

export async function startDelayProxy(targetPort: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const proxy: DelayProxy = { url: '', delayMs: 0, close: () => Promise.resolve() };
  const server: Server = createServer((client) => {
    const upstream = connect({ port: targetPort, host: '127.0.0.1' });
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    // Held in order: each chunk leaves `delayMs` after it arrived, never before the one ahead of it.
    let last = 0;
    upstream.on('data', (chunk: Buffer) => {
      const at = Math.max(Date.now() + proxy.delayMs, last);
      last = at;
      setTimeout(() => client.writable && client.write(chunk), at - Date.now());
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  proxy.url = `redis://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  proxy.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return proxy;
}
