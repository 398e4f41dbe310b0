/**
 * Opens the configured store: PostgreSQL when DATABASE_URL is set, else the SQLite file
 * (CALL_RECORDS_PATH), then reconciles what this replica left open and loads the recent list.
 */
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { isUnreachable, openPostgres } from './postgres.js';
import { openSqlite } from './sqlite.js';
import { RecordStore } from './store.js';

export interface OpenRecordsOptions {
  /** SQLite file or ':memory:' (ignored when `databaseUrl` is set). */
  path?: string | undefined;
  databaseUrl?: string | undefined;
  storePii: boolean;
  logger: Logger;
  replicaId: string;
  retentionDays?: number;
  queueMax?: number;
  batchDelayMs?: number;
  /** SQLite: write from a worker thread (default) or in-process (measurements). */
  writerThread?: boolean;
  /** Close this replica's records left open by an earlier run (default true). */
  reconcile?: boolean;
  /** Records that reconciling leaves open: calls an orphaned worker of the earlier run is still finishing. */
  keepOpen?: string[];
}

export async function openRecordStore(o: OpenRecordsOptions): Promise<RecordStore> {
  const backend = o.databaseUrl
    ? await openPostgres({ url: o.databaseUrl, logger: o.logger })
    : openSqlite({
        path: o.path ?? ':memory:',
        logger: o.logger,
        ...(o.writerThread === undefined ? {} : { writerThread: o.writerThread }),
      });
  const store = new RecordStore({
    backend,
    storePii: o.storePii,
    logger: o.logger,
    replicaId: o.replicaId,
    ...(o.retentionDays === undefined ? {} : { retentionDays: o.retentionDays }),
    ...(o.queueMax === undefined ? {} : { queueMax: o.queueMax }),
    ...(o.batchDelayMs === undefined ? {} : { batchDelayMs: o.batchDelayMs }),
  });
  const settle = async () => {
    if (o.reconcile !== false) await store.markInterrupted(undefined, o.keepOpen);
    await store.load();
  };
  try {
    await settle();
  } catch (err) {
    if (backend.kind !== 'postgres' || !isUnreachable(err)) {
      await store.shutdown(0).catch(() => undefined);
      throw err;
    }
    // PostgreSQL not there yet (logged by openPostgres): reconcile once it answers.
    const retry = setInterval(() => {
      if (store.closed) return clearInterval(retry);
      settle().then(
        () => clearInterval(retry),
        () => undefined,
      );
    }, 5_000);
    retry.unref();
  }
  o.logger.info(
    { backend: backend.kind, where: backend.where, storePii: o.storePii, replicaId: o.replicaId, retentionDays: o.retentionDays ?? 0 },
    'call records opened',
  );
  return store;
}

/** The store the configuration asks for, or undefined when records are off. */
export async function openConfiguredRecords(config: Config, logger: Logger, keepOpen: string[] = []): Promise<RecordStore | undefined> {
  const r = config.records;
  if (!r.databaseUrl && !r.path) return undefined;
  return openRecordStore({
    path: r.path,
    databaseUrl: r.databaseUrl,
    storePii: r.storePii,
    logger,
    replicaId: r.replicaId,
    retentionDays: r.retentionDays,
    queueMax: r.queueMax,
    keepOpen,
  });
}
