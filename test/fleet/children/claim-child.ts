/**
 * A separate process for the admission storm: one Fleet, waits for "go <callId…>" on stdin,
 * claims each at once, prints one JSON line of results.
 */
import { createInterface } from 'node:readline';
import { Fleet } from '../../../src/fleet/index.js';

const fleet = new Fleet({ url: process.env.REDIS_URL!, namespace: process.env.FLEET_NS!, capacity: 1, maxQueued: 0, claimTtlMs: 60_000 });
await fleet.start();
process.stdout.write('ready\n');
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (line === 'quit') break;
  const [cmd, at, ...ids] = line.split(' ');
  if (cmd !== 'go') continue;
  // Every process starts at the same wall-clock instant.
  await new Promise((r) => setTimeout(r, Math.max(0, Number(at) - Date.now())));
  const results = await Promise.all(ids.map((id) => fleet.claim(id).then((c) => (c.kind === 'won' ? 1 : 0))));
  process.stdout.write(JSON.stringify({ replica: fleet.replicaId, won: results }) + '\n');
}
await fleet.close();
process.exit(0);
