/**
 * warmFetch (a worker warms Node's fetch before it is ready, issue 27): it answers, and leaves no
 * server or socket behind that would keep an idle worker's event loop busy or its port open.
 */
import { expect, test } from 'vitest';
import { warmFetch } from '../../src/core/warm-fetch.js';

const tcp = () => process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;

test('warmFetch makes one local request and leaves no server or socket open', async () => {
  const before = tcp();
  await warmFetch();
  // The client's keep-alive socket goes once the server's close reaches it.
  for (let i = 0; i < 100 && tcp() !== before; i++) await new Promise((r) => setTimeout(r, 10));
  expect(process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP'))).toHaveLength(before);
});
