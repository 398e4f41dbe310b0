/**
 * A replica process for the loss tests: one Fleet with a consumer of CAPACITY slots. It acks
 * (the bot "forwarded the call") every call whose id starts with ACK_PREFIX, and holds the rest.
 * stdin: `enqueue <callId> <room> <waitMs>`. stdout: JSON lines.
 */
import { createInterface } from 'node:readline';
import { Fleet } from '../../../src/fleet/index.js';

const capacity = Number(process.env.CAPACITY ?? 1);
const fleet = new Fleet({
  url: process.env.REDIS_URL!,
  namespace: process.env.FLEET_NS!,
  capacity,
  maxQueued: 8,
  claimTtlMs: 60_000,
  heartbeatMs: Number(process.env.FLEET_HEARTBEAT_MS ?? 200),
  replicaLostMs: Number(process.env.FLEET_REPLICA_LOST_MS ?? 1000),
  blockMs: 200,
});
const say = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
await fleet.start();
let running = 0;
fleet.startConsumer(
  () => running < capacity,
  (t) => {
    running++;
    say({ taken: t.callId, room: t.room, attempt: t.attempt });
    if (!t.callId.startsWith(process.env.ACK_PREFIX ?? '\0')) return;
    // The bot forwards the call after ACK_DELAY_MS (plus up to ACK_SPREAD_MS, by the call's number, so
    // that a replica holds forwarded and not yet forwarded calls at once); it ends HOLD_MS later (never, unset).
    const spread = Number(process.env.ACK_SPREAD_MS ?? 0);
    const extra = spread > 0 ? ((Number(t.callId.replace(/\D/g, '')) || 0) % 5) * (spread / 4) : 0;
    setTimeout(
      () => {
        void fleet.ack(t.callId).then(() => {
          say({ acked: t.callId });
          if (process.env.HOLD_MS === undefined) return;
          setTimeout(() => {
            void fleet.finish(t.callId).then(() => {
              running--;
              fleet.wake();
              say({ finished: t.callId });
            });
          }, Number(process.env.HOLD_MS));
        });
      },
      Number(process.env.ACK_DELAY_MS ?? 0) + extra,
    );
  },
);
fleet.on('replica-lost', (l) => say({ lost: l }));
fleet.on('presumed-lost', () => say({ presumedLost: true }));
say({ ready: fleet.replicaId });
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, callId, room, waitMs] = line.split(' ');
  if (cmd === 'enqueue')
    say({
      enqueued: callId,
      result: (await fleet.enqueue({ callId: callId!, room: room!, payload: { from: 'child' } }, Number(waitMs))).kind,
    });
  if (cmd === 'quit') break;
}
await fleet.close();
process.exit(0);
