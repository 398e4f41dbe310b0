/**
 * The one place that reads the environment.
 *
 * Everything else receives a validated, typed `Config` (the server at start-up, the
 * worker in its `init` IPC message). A bad value stops start-up with a message that
 * names the variable.
 */
import { outboundConfig, recordingConfig, type OutboundConfig, type RecordingConfig } from './config-calls.js';
import os from 'node:os';
import path from 'node:path';
import envSchema from 'env-schema';

export { EnvSchema, type Env } from './config-schema.js';
import { EnvSchema, type Env } from './config-schema.js';
import { ConfigError } from './config-error.js';
import { llmConfig, type LlmConfig } from './config-llm.js';
import { sttConfig, type SttConfig } from './config-stt.js';
import { realtimeConfig, type RealtimeConfig } from './config-realtime.js';
import { errorMessage } from './errors.js';
import { pickWorkerEnv } from './worker-env.js';
import { TTS_KEYS, ttsConfig, type TtsConfig } from './config-tts.js';

export interface Config {
  nodeEnv: string;
  host: string;
  port: number;
  logLevel: Env['LOG_LEVEL'];
  /** LOG_MASK_NUMBERS: phone numbers in log lines keep their last 4 digits only. */
  logMaskNumbers: boolean;
  /** Per-IP limit on failed signature / auth attempts (401s) to /dialin and /webhooks/daily; signed requests are never limited. */
  authFailures: { limit: number; windowMs: number; logIntervalMs: number };
  /** Timeouts and connection caps of the HTTP server (plugins/connection-guard.ts). */
  http: {
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    socketTimeoutMs: number;
    /** 0: derived from the descriptor limit. */
    maxConnections: number;
    maxConnectionsPerSource: number;
    priorityReserve: number;
  };
  /** TRUST_PROXY, as Fastify's `trustProxy` takes it. */
  trustProxy: boolean | number | string;
  daily: {
    /** Undefined → the embedded emulator is used. */
    apiKey: string | undefined;
    /** Undefined in emulator mode until the emulator has a port. */
    apiUrl: string | undefined;
    apiTimeoutMs: number;
    /**
     * DAILY_RATE_LIMITS as given (src/daily/rate-limit.ts parseRateLimits), undefined → Daily's
     * documented figures. Per replica alone; shared through Redis in fleet mode.
     */
    rateLimits: string | undefined;
    tokenMode: Env['DAILY_TOKEN_MODE'];
    domainId: string | undefined;
    roomDeleteIntervalMs: number;
    /** Rooms queued for deletion, at most (DAILY_ROOM_DELETE_BACKLOG_MAX); the oldest past it is left to its `exp`. */
    roomDeleteBacklogMax: number;
    pinlessHmacSecrets: string[];
    signatureWindowMs: number;
    /** Secrets that verify domain webhooks (`DAILY_WEBHOOK_HMAC`). */
    webhookHmacSecrets: string[];
    /** `user:password` for domain webhooks' basic auth, when set. Never logged. */
    webhookBasicAuth: string | undefined;
    /** DAILY_WEBHOOK_ALLOW_UNSIGNED: accept domain webhooks nobody can verify (development only). */
    webhookAllowUnsigned: boolean;
    webhookReconcileGraceMs: number;
    callClient: NonNullable<Env['CALL_CLIENT']>;
    chromiumPath: string;
    bundleUrl: string | undefined;
    browserLayout: Env['BROWSER_LAYOUT'];
    botsPerBrowser: number;
  };
  admission: {
    maxConcurrentBots: number;
    maxQueuedCalls: number;
    queueTimeoutMs: number;
    maxBodyBytes: number;
  };
  /** Fleet mode; undefined without REDIS_URL. */
  fleet:
    | {
        /** Never logged. */
        redisUrl: string;
        namespace: string;
        heartbeatMs: number;
        replicaLostMs: number;
        /** FLEET_PRESENCE_RECHECK_MS: a lost replica's call whose bot is still in its room is looked at again this often. */
        presenceRecheckMs: number;
        /** FLEET_PRESENCE_LAG_MS: how far Daily's presence data may trail the room. */
        presenceLagMs: number;
        opTimeoutMs: number;
        /** FLEET_ADMIT_TIMEOUT_MS: budget of a webhook's Redis steps and of the heartbeat. */
        admitTimeoutMs: number;
        /** FLEET_DEGRADE_AFTER_MS: a connected Redis silent this long counts as down. */
        degradeAfterMs: number;
        /** FLEET_READY_WAIT_MS: not ready until Redis was reached once, at most this long. */
        readyWaitMs: number;
      }
    | undefined;
  call: {
    sipEndpoints: number;
    /** DAILY_DIALOUT: rooms are created with `enable_dialout` (warm transfer). */
    dialout: boolean;
    /** RECORDING, RECORDINGS_DIR, DAILY_RECORDING_ROOMS (docs/operations.md, "Recording"). */
    recording: RecordingConfig;
    dialinReadyTimeoutMs: number;
    joinTimeoutMs: number;
    maxCallMs: number;
    pinlessUpdateTimeoutMs: number;
    pinlessUpdateDeadlineMs: number;
  };
  workers: {
    idle: number;
    initTimeoutMs: number;
    pingIntervalMs: number;
    pingTimeoutMs: number;
    memoryWarnMb: number;
    memoryLimitMb: number;
    closeTimeoutMs: number;
    /** WORKER_REFILL_DEFER_MAX_MS: a handed-out worker's replacement waits for its caller to leave hold, at most this long (0: at once). */
    refillDeferMaxMs: number;
    drainTimeoutMs: number;
  };
  /** Warm rooms (src/workers/parent/warm-slots.ts). */
  warm: {
    rooms: number;
    roomMaxAgeMs: number;
  };
  bots: {
    dir: string;
    defaultBot: string;
    /** Explicit ROUTES_FILE (must exist), or undefined: `<dir>/routes.json` when present. */
    routesFile: string | undefined;
  };
  tts: TtsConfig;
  /** The bots' LLM (`call.llm`); undefined without a key for it. */
  llm: LlmConfig | undefined;
  /** The bots' speech-to-text: STT_PROVIDER and the vendors' keys. */
  stt: SttConfig;
  /** Speech-to-speech bots: the vendors' keys and bases. */
  realtime: RealtimeConfig;
  records: {
    /** A file path, `:memory:`, or undefined when CALL_RECORDS_PATH=off. */
    path: string | undefined;
    storePii: boolean;
    /** DATABASE_URL (PostgreSQL); never logged (it may hold a password). */
    databaseUrl: string | undefined;
    retentionDays: number;
    queueMax: number;
    replicaId: string;
  };
  /** Outbound calls (docs/outbound.md); `apiToken` undefined → POST /calls is off. Never logged. */
  outbound: OutboundConfig;
  dashboard: {
    /** Never logged. Undefined → the dashboard, its socket and /calls are open. */
    token: string | undefined;
    /** DASHBOARD_ALLOWED_HOSTS, lower-cased; empty: loopback names and HOST only. */
    allowedHosts: string[];
    maxClientsPerSource: number;
  };
  emulator: {
    enabled: boolean;
    host: string;
    port: number;
    numbers: string[];
    /** EMULATOR_API_KEY: undefined → the service picks a random key. Never logged. */
    apiKey: string | undefined;
    /** EMULATOR_RATE_LIMITS: Daily's REST rate limits in the embedded emulator. */
    rateLimits: boolean;
  };
  resilience: {
    holdBudgetMs: number;
    fallbackSipUri: string | undefined;
    replicaId: string;
    /** Admitted call ids (JSON lines, kept SIGNATURE_WINDOW_MS); undefined → memory only. */
    admittedPath: string | undefined;
    workerNice: number;
  };
}

/** This replica's id: REPLICA_ID, else from the host name (letters and digits only: it prefixes room names). */
function replicaIdOf(e: Env): string {
  return (
    e.REPLICA_ID ??
    (os
      .hostname()
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(-12) ||
      'local')
  );
}

export { ConfigError } from './config-error.js';

/** True for an http(s) URL on 127.0.0.0/8, localhost or [::1]. */
function isLoopbackUrl(url: string | undefined): boolean {
  if (url === undefined) return false;
  try {
    const u = new URL(url);
    return (
      (u.protocol === 'http:' || u.protocol === 'https:') &&
      (u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname))
    );
  } catch {
    return false;
  }
}

function parseTrustProxy(v: string): boolean | number | string {
  const s = v.trim();
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^\d+$/.test(s)) return Number(s);
  // Addresses, CIDRs, and proxy-addr's names for private ranges (loopback, linklocal, uniquelocal).
  if (s.split(',').every((p) => /^([0-9a-fA-F.:]+(\/\d{1,3})?|loopback|linklocal|uniquelocal)$/.test(p.trim()))) return s;
  throw new ConfigError(
    'invalid configuration: TRUST_PROXY must be true, false, a hop count, or comma-separated addresses/CIDRs (or loopback, linklocal, uniquelocal)',
  );
}

/** The comma-separated items of `v`, trimmed, without empty ones. */
function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** A comma-separated list of base64 secrets (`name` is the variable, for the message). */
function secretList(v: string | undefined, name: string): string[] {
  const secrets = list(v);
  for (const s of secrets) {
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) {
      throw new ConfigError(`invalid configuration: ${name} must be a comma-separated list of base64 secrets`);
    }
  }
  return secrets;
}

/** The rules between variables (one at a time is the schema's): each names the variables it is about. */
function checkEnv(e: Env): { secrets: string[]; webhookSecrets: string[] } {
  const secrets = secretList(e.DAILY_PINLESS_HMAC, 'DAILY_PINLESS_HMAC');
  const ttsKey = TTS_KEYS[e.TTS_PROVIDER];
  if (ttsKey && !e[ttsKey]) throw new ConfigError(`invalid configuration: TTS_PROVIDER=${e.TTS_PROVIDER} needs ${ttsKey}`);
  const webhookSecrets = secretList(e.DAILY_WEBHOOK_HMAC, 'DAILY_WEBHOOK_HMAC');
  if (e.DAILY_WEBHOOK_BASIC_AUTH !== undefined && !/^[^:]+:.+$/.test(e.DAILY_WEBHOOK_BASIC_AUTH)) {
    throw new ConfigError('invalid configuration: DAILY_WEBHOOK_BASIC_AUTH must be user:password');
  }
  if (e.DAILY_WEBHOOK_ALLOW_UNSIGNED && e.NODE_ENV === 'production') {
    throw new ConfigError('invalid configuration: DAILY_WEBHOOK_ALLOW_UNSIGNED=true is for development; not with NODE_ENV=production');
  }
  if (e.FLEET_REPLICA_LOST_MS <= e.FLEET_HEARTBEAT_MS) {
    throw new ConfigError('invalid configuration: FLEET_REPLICA_LOST_MS must exceed FLEET_HEARTBEAT_MS');
  }
  if (e.REDIS_URL !== undefined && !/^rediss?:\/\//.test(e.REDIS_URL)) {
    throw new ConfigError('invalid configuration: REDIS_URL must be a redis:// or rediss:// URL');
  }
  if (e.WORKER_MEMORY_WARN_MB > e.WORKER_MEMORY_LIMIT_MB) {
    throw new ConfigError('invalid configuration: WORKER_MEMORY_WARN_MB must not exceed WORKER_MEMORY_LIMIT_MB');
  }
  const emulatorEnabled = e.DAILY_API_KEY === undefined;
  if (!emulatorEnabled && secrets.length === 0 && e.NODE_ENV === 'production') {
    throw new ConfigError(
      'invalid configuration: DAILY_PINLESS_HMAC is required when NODE_ENV=production (unsigned webhooks are accepted only in development)',
    );
  }
  // An external emulator (several replicas sharing one, see docs/scaling.md): allowed only on loopback.
  if (!emulatorEnabled && e.CALL_CLIENT === 'emulator' && !isLoopbackUrl(e.DAILY_API_URL)) {
    throw new ConfigError(
      'invalid configuration: CALL_CLIENT=emulator cannot be used with DAILY_API_KEY unless DAILY_API_URL points at an emulator on loopback (127.0.0.1, localhost, [::1])',
    );
  }
  return { secrets, webhookSecrets };
}

/** Validates `env` (process.env by default) once and returns the typed config. */
export function loadConfig(env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): Config {
  let e: Env;
  try {
    e = envSchema<Env>({ schema: EnvSchema, data: { ...env }, dotenv: false });
  } catch (err) {
    // ajv names the variable (e.g. "env/PORT must be integer"); keep that, drop the noise.
    throw new ConfigError(`invalid configuration: ${errorMessage(err)}`);
  }
  const { secrets, webhookSecrets } = checkEnv(e);
  const emulatorEnabled = e.DAILY_API_KEY === undefined;
  return {
    nodeEnv: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    logMaskNumbers: e.LOG_MASK_NUMBERS,
    authFailures: { limit: e.AUTH_FAILURE_LIMIT, windowMs: e.AUTH_FAILURE_WINDOW_MS, logIntervalMs: e.AUTH_FAILURE_LOG_INTERVAL_MS },
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: Math.max(e.HTTP_REQUEST_TIMEOUT_MS, e.HTTP_HEADERS_TIMEOUT_MS),
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      socketTimeoutMs: e.HTTP_SOCKET_TIMEOUT_MS,
      maxConnections: e.HTTP_MAX_CONNECTIONS,
      maxConnectionsPerSource: e.HTTP_MAX_CONNECTIONS_PER_SOURCE,
      priorityReserve: e.HTTP_PRIORITY_RESERVE,
    },
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    daily: dailyConfig(e, secrets, webhookSecrets),
    admission: {
      maxConcurrentBots: e.MAX_CONCURRENT_BOTS,
      maxQueuedCalls: e.MAX_QUEUED_CALLS,
      queueTimeoutMs: e.QUEUE_TIMEOUT_MS,
      maxBodyBytes: e.MAX_BODY_BYTES,
    },
    fleet: e.REDIS_URL
      ? {
          redisUrl: e.REDIS_URL,
          namespace: e.FLEET_NAMESPACE,
          heartbeatMs: e.FLEET_HEARTBEAT_MS,
          replicaLostMs: e.FLEET_REPLICA_LOST_MS,
          presenceRecheckMs: e.FLEET_PRESENCE_RECHECK_MS,
          presenceLagMs: e.FLEET_PRESENCE_LAG_MS,
          opTimeoutMs: e.FLEET_OP_TIMEOUT_MS,
          admitTimeoutMs: e.FLEET_ADMIT_TIMEOUT_MS,
          degradeAfterMs: e.FLEET_DEGRADE_AFTER_MS,
          readyWaitMs: e.FLEET_READY_WAIT_MS,
        }
      : undefined,
    ...callConfig(e, emulatorEnabled),
    stt: sttConfig(e),
    realtime: realtimeConfig(e),
    ...serviceConfig(e, emulatorEnabled),
  };
}

function dailyConfig(e: Env, secrets: string[], webhookSecrets: string[]): Config['daily'] {
  const emulatorEnabled = e.DAILY_API_KEY === undefined;
  return {
    apiKey: e.DAILY_API_KEY,
    apiUrl: e.DAILY_API_URL ?? (emulatorEnabled ? undefined : 'https://api.daily.co/v1'),
    apiTimeoutMs: e.DAILY_API_TIMEOUT_MS,
    rateLimits: e.DAILY_RATE_LIMITS,
    tokenMode: e.DAILY_TOKEN_MODE,
    domainId: e.DAILY_DOMAIN_ID,
    roomDeleteIntervalMs: e.DAILY_ROOM_DELETE_INTERVAL_MS,
    roomDeleteBacklogMax: e.DAILY_ROOM_DELETE_BACKLOG_MAX,
    pinlessHmacSecrets: secrets,
    signatureWindowMs: e.SIGNATURE_WINDOW_MS,
    webhookHmacSecrets: webhookSecrets,
    webhookBasicAuth: e.DAILY_WEBHOOK_BASIC_AUTH,
    webhookAllowUnsigned: e.DAILY_WEBHOOK_ALLOW_UNSIGNED,
    webhookReconcileGraceMs: e.DAILY_WEBHOOK_RECONCILE_GRACE_MS,
    callClient: e.CALL_CLIENT ?? (emulatorEnabled ? 'emulator' : 'daily'),
    chromiumPath: e.CHROMIUM_PATH,
    bundleUrl: e.DAILY_BUNDLE_URL,
    browserLayout: e.BROWSER_LAYOUT,
    botsPerBrowser: e.BOTS_PER_BROWSER,
  };
}

/** A call and what runs it: its limits, the workers, warm rooms, bots, speech and the LLM. */
function callConfig(e: Env, emulatorEnabled: boolean): Pick<Config, 'call' | 'workers' | 'warm' | 'bots' | 'tts' | 'llm'> {
  return {
    call: {
      sipEndpoints: e.DIALIN_SIP_ENDPOINTS,
      dialout: e.DAILY_DIALOUT,
      recording: recordingConfig(e),
      dialinReadyTimeoutMs: e.DIALIN_READY_TIMEOUT_MS,
      joinTimeoutMs: e.JOIN_TIMEOUT_MS,
      maxCallMs: e.MAX_CALL_MS,
      pinlessUpdateTimeoutMs: e.PINLESS_UPDATE_TIMEOUT_MS,
      pinlessUpdateDeadlineMs: e.PINLESS_UPDATE_DEADLINE_MS,
    },
    workers: {
      idle: e.IDLE_WORKERS ?? Math.min(os.availableParallelism(), 4),
      initTimeoutMs: e.WORKER_INIT_TIMEOUT_MS,
      pingIntervalMs: e.WORKER_PING_INTERVAL_MS,
      pingTimeoutMs: e.WORKER_PING_TIMEOUT_MS,
      memoryWarnMb: e.WORKER_MEMORY_WARN_MB,
      memoryLimitMb: e.WORKER_MEMORY_LIMIT_MB,
      closeTimeoutMs: e.WORKER_CLOSE_TIMEOUT_MS,
      refillDeferMaxMs: e.WORKER_REFILL_DEFER_MAX_MS,
      drainTimeoutMs: e.DRAIN_TIMEOUT_MS,
    },
    warm: { rooms: e.WARM_ROOMS ?? (emulatorEnabled ? 1 : 0), roomMaxAgeMs: e.WARM_ROOM_MAX_AGE_MS },
    bots: {
      dir: e.BOTS_DIR ?? new URL('../../bots/', import.meta.url).pathname,
      defaultBot: e.DEFAULT_BOT,
      routesFile: e.ROUTES_FILE,
    },
    tts: ttsConfig(e),
    llm: llmConfig(e),
  };
}

/** Around the calls: records, the dashboard, the embedded emulator, resilience. */
function serviceConfig(e: Env, emulatorEnabled: boolean): Pick<Config, 'records' | 'dashboard' | 'emulator' | 'resilience' | 'outbound'> {
  return {
    outbound: outboundConfig(e),
    records: {
      path: e.CALL_RECORDS_PATH === 'off' ? undefined : e.CALL_RECORDS_PATH,
      storePii: e.CALL_RECORDS_STORE_PII,
      databaseUrl: e.DATABASE_URL,
      retentionDays: e.CALL_RECORDS_RETENTION_DAYS,
      queueMax: e.CALL_RECORDS_QUEUE_MAX,
      replicaId: replicaIdOf(e),
    },
    dashboard: {
      token: e.DASHBOARD_TOKEN,
      allowedHosts: list(e.DASHBOARD_ALLOWED_HOSTS).map((h) => h.toLowerCase()),
      maxClientsPerSource: e.DASHBOARD_MAX_CLIENTS_PER_SOURCE,
    },
    emulator: {
      enabled: emulatorEnabled,
      host: e.EMULATOR_HOST,
      port: e.EMULATOR_PORT,
      numbers: list(e.EMULATOR_NUMBERS),
      apiKey: e.EMULATOR_API_KEY,
      rateLimits: e.EMULATOR_RATE_LIMITS,
    },
    resilience: {
      holdBudgetMs: e.HOLD_BUDGET_MS,
      fallbackSipUri: e.FALLBACK_SIP_URI,
      replicaId: replicaIdOf(e),
      admittedPath: admittedPathOf(e),
      workerNice: e.WORKER_NICE,
    },
  };
}

/**
 * ADMITTED_LOG_PATH, independent of the records: given, `off` (memory), or by default next to the
 * records file, in `./data` when records are `off`, and in memory when they are (`:memory:`).
 */
function admittedPathOf(e: Env): string | undefined {
  if (e.ADMITTED_LOG_PATH !== undefined) return e.ADMITTED_LOG_PATH === 'off' ? undefined : e.ADMITTED_LOG_PATH;
  if (e.CALL_RECORDS_PATH === ':memory:') return undefined;
  return path.join(e.CALL_RECORDS_PATH === 'off' ? './data' : path.dirname(e.CALL_RECORDS_PATH), 'admitted-calls.jsonl');
}

/** The minimal environment a worker process is forked with (see worker-env.ts). */
export function workerEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return pickWorkerEnv(env, list(env.WORKER_ENV_PASSTHROUGH));
}
