/**
 * Issue 21, item 4: a replica with a wrong or unreachable REDIS_URL is not ready until Redis has
 * been reached once, for at most FLEET_READY_WAIT_MS; then it serves alone with one loud log line.
 * With Redis reachable it is ready at once. Real server processes, a real Redis.
 */
import { afterAll, expect, it } from 'vitest';
import { freePort, startRedis, type RedisServer } from '../helpers/redis.js';
import { getJson, startServerProcess, waitFor, type ServerProcess } from '../helpers/ops.js';

const servers: ServerProcess[] = [];
let redis: RedisServer | undefined;
afterAll(async () => {
  for (const s of servers) await s.kill();
  await redis?.stop();
});

it(
  'unreachable REDIS_URL: /health/ready is 503 fleet_connecting for FLEET_READY_WAIT_MS, then 200 with a loud error line',
  { timeout: 60_000 },
  async () => {
    const port = await freePort();
    const s = await startServerProcess({ REDIS_URL: `redis://127.0.0.1:${port}`, FLEET_READY_WAIT_MS: '8000' });
    servers.push(s);
    const early = await getJson<{ status: string; reason?: string }>(`${s.url}/health/ready`);
    expect(early).toMatchObject({ status: 503, body: { reason: 'fleet_connecting' } });
    const line = await s.waitLine((l) => typeof l.msg === 'string' && l.msg.startsWith('FLEET: Redis not reached'), 20_000);
    expect(line.level).toBe(50);
    await waitFor('ready', async () => (await getJson(`${s.url}/health/ready`)).status === 200, 10_000);
  },
);

it('reachable REDIS_URL: ready at once, no such line', { timeout: 60_000 }, async () => {
  redis = await startRedis();
  const s = await startServerProcess({ REDIS_URL: redis.url, FLEET_READY_WAIT_MS: '30000' });
  servers.push(s);
  await waitFor('ready', async () => (await getJson(`${s.url}/health/ready`)).status === 200, 10_000);
  expect(s.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('FLEET: Redis not reached'))).toBe(false);
});
