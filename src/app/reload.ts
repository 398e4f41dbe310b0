/**
 * Reload without restart, wired (docs/operations.md, "Reload"): the replica's BotReloader
 * (src/admission/reload.ts), SIGHUP, and in fleet mode the Redis channel that carries a reload to
 * every replica (src/fleet/reload.ts, loaded only with REDIS_URL).
 */
import type { Logger } from '../core/logger.js';
import { errorMessage } from '../core/errors.js';
import type { BotReloader, ReloadControl } from '../admission/reload.js';
import type { Fleet } from '../fleet/fleet.js';
import type { FleetReload } from '../fleet/reload.js';

export type { ReloadControl };

export async function reloadControl<P>(reloader: BotReloader, logger: Logger, fleet: Fleet<P> | undefined): Promise<ReloadControl> {
  const log = logger.child({ component: 'reload' });
  let channel: FleetReload<P> | undefined;
  if (fleet) {
    const { FleetReload } = await import('../fleet/reload.js');
    channel = new FleetReload(
      fleet,
      (m) => {
        // Behind a reload in progress, if any: the message is not lost to a 409.
        void reloader
          .idle()
          .then(() => reloader.reload(`fleet:${m.from}`))
          .catch((err: unknown) => log.debug({ err: errorMessage(err) }, 'fleet reload not applied here'));
      },
      log,
    );
  }
  // The versions this replica's heartbeat carries: what its workers loaded, as they report it.
  const publishVersions = () => channel?.setVersions(reloader.generation, reloader.versions());
  const timer = channel ? setInterval(publishVersions, 1_000) : undefined;
  timer?.unref();
  reloader.onReloaded = publishVersions;
  const onHup = () => {
    reloader.reload('SIGHUP').catch(() => undefined); // refusals are logged by the reloader
  };
  return {
    async reload(by, toFleet) {
      const r = await reloader.reload(by);
      const published = toFleet && channel ? await channel.publish() : undefined;
      return { ...r, replica: fleet?.replicaId, ...(published !== undefined ? { published } : {}) };
    },
    status() {
      const last = reloader.last;
      return {
        generation: reloader.generation,
        bots: reloader.versions(),
        ...(last
          ? {
              lastReload: {
                at: new Date(last.atMs).toISOString(),
                ok: last.ok,
                generation: last.generation,
                ...(last.error ? { error: last.error } : {}),
              },
            }
          : {}),
      };
    },
    async start() {
      publishVersions();
      process.on('SIGHUP', onHup);
      await channel?.start();
    },
    async close() {
      process.off('SIGHUP', onHup);
      clearInterval(timer);
      await channel?.close();
    },
  };
}
