/**
 * What the Fastify app and each of its routes and plugins are given. Its own module so that
 * app.ts imports the routes and the routes import this, not app.ts (no cycle).
 */
import type { Config } from '../core/config.js';
import type { Dispatcher } from '../admission/dispatcher.js';
import type { OutboundCalls } from '../admission/outbound.js';
import type { ReloadControl } from '../admission/reload.js';
import type { FleetAdmission } from '../fleet/admission.js';
import type { WorkerPool } from '../workers/parent/pool.js';
import type { Reconciler } from '../call/reconcile.js';
import type { Logger } from '../core/logger.js';
import type { CallRecordStore } from '../records/store.js';
import type { DailyRestClient } from '../daily/rest.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  dispatcher: Dispatcher;
  /** Daily's domain webhooks → calls (POST /webhooks/daily). */
  reconciler: Reconciler;
  pool: WorkerPool;
  /** The secrets that verify pinless webhooks (config's, or the embedded emulator's ephemeral one). */
  pinlessSecrets: string[];
  /** The secrets that verify domain webhooks (config's DAILY_WEBHOOK_HMAC, or the embedded emulator's). Default: config's. */
  webhookSecrets?: string[];
  version: string;
  /** Call records (GET /calls, dashboard); undefined when CALL_RECORDS_PATH=off. */
  records?: CallRecordStore | undefined;
  /** Daily's REST API (DELETE /calls/:id/recording); absent in tests that build the app alone. */
  daily?: DailyRestClient | undefined;
  /** Fleet mode (REDIS_URL): admission, domain events and /status through the fleet. */
  fleet?: FleetAdmission | undefined;
  /** Outbound calls (POST /calls); undefined when CALLS_API_TOKEN is unset. */
  outbound?: OutboundCalls | undefined;
  /** POST /admin/reload and the versions in /status; absent in tests that build the app alone. */
  reloads?: ReloadControl | undefined;
}
