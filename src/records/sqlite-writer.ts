/**
 * The SQLite writer thread: its own connection to the same file, so inserts, commits and WAL
 * checkpoints (the fsyncs) never stall the event loop that answers webhooks. A real module that
 * tsc checks; started by sqlite.ts as `sqlite-writer.js` (compiled) or `.ts` (through tsx).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteWriteConnection, type WriteRequest } from './sqlite-conn.js';
import type { FunnelStep } from './funnel.js';
import { errorMessage, errorCode } from '../core/errors.js';

export type ToWriter = { type: 'run'; seq: number; req: WriteRequest } | { type: 'close' };
export type FromWriter =
  | { type: 'ready' }
  | { type: 'closed' }
  | { type: 'done'; seq: number; changes: number; result?: FunnelStep[]; tookMs: number }
  | { type: 'error'; seq: number; message: string; code?: string }
  | { type: 'fatal'; message: string };

export interface WriterData {
  path: string;
}

const port = parentPort;
if (port) {
  const send = (m: FromWriter) => port.postMessage(m);
  let conn: SqliteWriteConnection | undefined;
  try {
    conn = SqliteWriteConnection.open((workerData as WriterData).path);
    send({ type: 'ready' });
  } catch (err) {
    send({ type: 'fatal', message: errorMessage(err) });
  }
  port.on('message', (m: ToWriter) => {
    if (m.type === 'close') {
      conn?.db.close();
      send({ type: 'closed' });
      port.close();
      return;
    }
    const t0 = performance.now();
    try {
      if (!conn) throw new Error('the writer has no database connection');
      const out = conn.run(m.req);
      const tookMs = performance.now() - t0;
      send(
        typeof out === 'number'
          ? { type: 'done', seq: m.seq, changes: out, tookMs }
          : { type: 'done', seq: m.seq, changes: 0, result: out, tookMs },
      );
    } catch (err) {
      const code = errorCode(err);
      send({ type: 'error', seq: m.seq, message: errorMessage(err), ...(code ? { code } : {}) });
    }
  });
}
