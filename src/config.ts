/**
 * The one place that reads the environment.
 *
 * Everything else receives a validated, typed `Config` (the server at start-up, the
 * worker in its `init` IPC message). A bad value stops start-up with a message that
 * names the variable.
 */
import os from 'node:os';
import path from 'node:path';
import envSchema from 'env-schema';
import { Type, type Static } from 'typebox';

const Int = (def: number, min = 0, description?: string) =>
  Type.Integer({ default: def, minimum: min, ...(description ? { description } : {}) });

export const EnvSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development' }),
  HOST: Type.String({ default: '0.0.0.0' }),
  PORT: Int(7860, 0, 'HTTP port of the service'),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  /** Mask phone numbers in logs (all but the last 4 digits). */
  LOG_MASK_NUMBERS: Type.Boolean({ default: true }),
  /** Failed signature / auth attempts (401) per source IP on /dialin and /webhooks/daily before 429s. */
  AUTH_FAILURE_LIMIT: Int(20, 1),
  /** The window those failures are counted in. */
  AUTH_FAILURE_WINDOW_MS: Int(60_000, 1000),
  /**
   * Which X-Forwarded-For hops to believe for the client address (per-source limits, logs):
   * `true` (all: only behind a proxy that overwrites the header), `false`, a hop count, or
   * comma-separated proxy addresses / CIDRs.
   */
  TRUST_PROXY: Type.String({ default: 'loopback,linklocal,uniquelocal', minLength: 1 }),

  // Daily
  DAILY_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  DAILY_API_URL: Type.Optional(Type.String({ minLength: 1 })),
  DAILY_PINLESS_HMAC: Type.Optional(Type.String()),
  /** Domain webhooks (POST /webhooks/daily): base64 secret(s) of the webhook's `hmac`, comma-separated for rotation. */
  DAILY_WEBHOOK_HMAC: Type.Optional(Type.String()),
  /** Domain webhooks: `user:password` expected in `Authorization: Basic …` (the webhook's `basicAuth`). */
  DAILY_WEBHOOK_BASIC_AUTH: Type.Optional(Type.String({ minLength: 3 })),
  /** A dialin.stopped / meeting.ended for a call still live this long later ends it. */
  DAILY_WEBHOOK_RECONCILE_GRACE_MS: Int(3_000, 0),
  SIGNATURE_WINDOW_MS: Int(300_000, 1000),
  CALL_CLIENT: Type.Optional(Type.Union([Type.Literal('emulator'), Type.Literal('daily')])),
  DAILY_API_TIMEOUT_MS: Int(5_000, 100),
  /** Bot meeting tokens: signed here with the API key (`self-signed`), `rest` (POST /meeting-tokens), or `auto` (self-signed once Daily accepts them). */
  DAILY_TOKEN_MODE: Type.Union([Type.Literal('auto'), Type.Literal('self-signed'), Type.Literal('rest')], { default: 'auto' }),
  /** The domain's `domain_id` for self-signed tokens (default: read once from GET /). */
  DAILY_DOMAIN_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  /** Room deletions are queued and sent at most one per this interval (Daily's DELETE /rooms class: about 2 req/s). */
  DAILY_ROOM_DELETE_INTERVAL_MS: Int(500, 0),
  /** Where the daily client's Chromium lives (Debian's package by default). */
  CHROMIUM_PATH: Type.String({ default: '/usr/bin/chromium' }),
  /** daily-js `dailyConfig.bundlePathOverride`: where the call-machine bundle is loaded from (tests, offline). */
  DAILY_BUNDLE_URL: Type.Optional(Type.String({ minLength: 1 })),

  // Admission
  MAX_CONCURRENT_BOTS: Int(8, 1),
  MAX_QUEUED_CALLS: Int(16, 0),
  QUEUE_TIMEOUT_MS: Int(10_000, 0),
  MAX_BODY_BYTES: Int(16_384, 256),

  // Fleet mode (docs/scaling.md): unset REDIS_URL → one replica on its own, no Redis
  /** redis://[user:password@]host:port[/db] of the fleet's Redis. Never logged (it may hold a password). */
  REDIS_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** Key namespace (`pb:{<ns>}:…`): fleets sharing one Redis use different ones. */
  FLEET_NAMESPACE: Type.String({ default: 'default', pattern: '^[A-Za-z0-9._-]{1,64}$' }),
  FLEET_HEARTBEAT_MS: Int(2_000, 100),
  /** No heartbeat this long → the replica is lost (detected within this + FLEET_HEARTBEAT_MS). */
  FLEET_REPLICA_LOST_MS: Int(10_000, 500),
  /** Every Redis command gives up after this (the fleet then runs degraded). */
  FLEET_OP_TIMEOUT_MS: Int(500, 50),
  /** Daily REST limits per class, `class=limit/windowMs[/reserve]` (classes default, delete, start). */
  DAILY_RATE_LIMITS: Type.Optional(Type.String({ pattern: '^\\s*(default|delete|start)\\s*=\\s*\\d+/\\d+(/\\d+)?\\s*(,\\s*(default|delete|start)\\s*=\\s*\\d+/\\d+(/\\d+)?\\s*)*$' })),

  // Call lifecycle
  /** SIP endpoints per room (Daily's `sip.num_endpoints`); dialin-ready fires once per endpoint. */
  DIALIN_SIP_ENDPOINTS: Type.Integer({ default: 1, minimum: 1, maximum: 5 }),
  /** Rooms allow dial-out (Daily's `enable_dialout`; needs an account approved for dial-out): `call.warmTransfer()`. */
  DAILY_DIALOUT: Type.Boolean({ default: false }),
  DIALIN_READY_TIMEOUT_MS: Int(15_000, 100),
  JOIN_TIMEOUT_MS: Int(20_000, 100),
  MAX_CALL_MS: Int(1_800_000, 1000),
  PINLESS_UPDATE_TIMEOUT_MS: Int(4_000, 50),
  PINLESS_UPDATE_DEADLINE_MS: Int(15_000, 100),

  // Workers
  IDLE_WORKERS: Type.Optional(Type.Integer({ minimum: 0 })),
  WORKER_INIT_TIMEOUT_MS: Int(15_000, 100),
  WORKER_PING_INTERVAL_MS: Int(5_000, 50),
  WORKER_PING_TIMEOUT_MS: Int(15_000, 100),
  WORKER_MEMORY_WARN_MB: Int(400, 16),
  WORKER_MEMORY_LIMIT_MB: Int(800, 16),
  WORKER_CLOSE_TIMEOUT_MS: Int(5_000, 50),
  DRAIN_TIMEOUT_MS: Int(600_000, 0),

  // Bots
  BOTS_DIR: Type.Optional(Type.String()),
  DEFAULT_BOT: Type.String({ default: 'default' }),
  /** Routing file (JSON, see docs/bots.md). Default: `<BOTS_DIR>/routes.json` when it exists. */
  ROUTES_FILE: Type.Optional(Type.String({ minLength: 1 })),

  // Speech and language services for bots (see docs/bots.md)
  /** auto: espeak-ng with the daily client when installed, text-only otherwise (the emulator carries words). */
  TTS_PROVIDER: Type.Union(['auto', 'espeak', 'text', 'openai'].map((l) => Type.Literal(l)), { default: 'auto' }),
  TTS_VOICE: Type.Optional(Type.String({ minLength: 1 })),
  TTS_SAMPLE_RATE: Type.Integer({ default: 16_000, minimum: 8_000, maximum: 48_000 }),
  ESPEAK_PATH: Type.String({ default: 'espeak-ng' }),
  /** Key for OpenAI-compatible LLM / TTS endpoints; unset → bots run offline (rule-based replies, local TTS). */
  OPENAI_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  LLM_BASE_URL: Type.String({ default: 'https://api.openai.com/v1' }),
  LLM_MODEL: Type.String({ default: 'gpt-4o-mini' }),
  LLM_TIMEOUT_MS: Int(10_000, 100),
  TTS_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  TTS_MODEL: Type.String({ default: 'gpt-4o-mini-tts' }),

  // Call records and dashboard (docs/dashboard.md)
  /** SQLite file of call records; `:memory:` keeps them for this process only, `off` disables them. */
  CALL_RECORDS_PATH: Type.String({ default: './data/calls.db', minLength: 1 }),
  /** Store full caller/callee numbers, DTMF digits and transcripts in records (default: masked / left out). */
  CALL_RECORDS_STORE_PII: Type.Boolean({ default: false }),
  /** When set, GET /dashboard, /ws/events and GET /calls need it (`?token=` or `Authorization: Bearer`). */
  DASHBOARD_TOKEN: Type.Optional(Type.String({ minLength: 16 })),

  // Embedded emulator (used when DAILY_API_KEY is unset)
  EMULATOR_HOST: Type.String({ default: '127.0.0.1' }),
  EMULATOR_PORT: Int(7861, 0),
  /** Bearer key of the embedded emulator (random when unset); the CLI uses it too (docs/cli.md). */
  EMULATOR_API_KEY: Type.Optional(Type.String({ minLength: 8 })),
  /** Phone numbers the embedded emulator routes to this service (comma-separated). */
  EMULATOR_NUMBERS: Type.String({ default: '+15550001000,+15550001001,+15550001002,+15550001003,+15550001004' }),
  /** Daily's REST rate limits in the embedded emulator (docs/emulator.md); `false` turns them off. */
  EMULATOR_RATE_LIMITS: Type.Boolean({ default: true }),

  // Resilience (docs/RELIABILITY.md): hold budget, fallback, replica-owned rooms, worker priority
  /** How long a caller may wait on hold for us (admission estimate, pre-forward retries, fallback). */
  HOLD_BUDGET_MS: Int(30_000, 1000),
  /** A Daily room SIP URI (e.g. a human queue) for calls we cannot serve; unset → a built-in apology bot. */
  FALLBACK_SIP_URI: Type.Optional(Type.String({ pattern: '^sips?:[^@\\s]+@[^@\\s]+$' })),
  /** Prefix of this replica's room names (`pb-<id>-…`), so a restart finds its leftovers. Default: from the hostname. */
  REPLICA_ID: Type.Optional(Type.String({ pattern: '^[a-z0-9]{1,20}$' })),
  /** Added to workers' CPU nice value (0 = same priority as the server). */
  WORKER_NICE: Type.Integer({ default: 5, minimum: 0, maximum: 19 }),
});
export type Env = Static<typeof EnvSchema>;

export interface Config {
  nodeEnv: string;
  host: string;
  port: number;
  logLevel: string;
  /** LOG_MASK_NUMBERS: phone numbers in log lines keep their last 4 digits only. */
  logMaskNumbers: boolean;
  /** Per-IP limit on failed signature / auth attempts (401s) to /dialin and /webhooks/daily; signed requests are never limited. */
  authFailures: { limit: number; windowMs: number };
  /** TRUST_PROXY, as Fastify's `trustProxy` takes it. */
  trustProxy: boolean | number | string;
  daily: {
    /** Undefined → the embedded emulator is used. */
    apiKey: string | undefined;
    /** Undefined in emulator mode until the emulator has a port. */
    apiUrl: string | undefined;
    apiTimeoutMs: number;
    tokenMode: 'auto' | 'self-signed' | 'rest';
    domainId: string | undefined;
    roomDeleteIntervalMs: number;
    pinlessHmacSecrets: string[];
    signatureWindowMs: number;
    /** Secrets that verify domain webhooks (`DAILY_WEBHOOK_HMAC`). */
    webhookHmacSecrets: string[];
    /** `user:password` for domain webhooks' basic auth, when set. Never logged. */
    webhookBasicAuth: string | undefined;
    webhookReconcileGraceMs: number;
    callClient: 'emulator' | 'daily';
    chromiumPath: string;
    bundleUrl: string | undefined;
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
        opTimeoutMs: number;
        /** DAILY_RATE_LIMITS as given (src/fleet/rate-limit.ts parseRateLimits), undefined → Daily's documented figures. */
        rateLimits: string | undefined;
      }
    | undefined;
  call: {
    sipEndpoints: number;
    /** DAILY_DIALOUT: rooms are created with `enable_dialout` (warm transfer). */
    dialout: boolean;
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
    drainTimeoutMs: number;
  };
  bots: {
    dir: string;
    defaultBot: string;
    /** Explicit ROUTES_FILE (must exist), or undefined: `<dir>/routes.json` when present. */
    routesFile: string | undefined;
  };
  tts: {
    provider: 'auto' | 'espeak' | 'text' | 'openai';
    voice: string | undefined;
    sampleRate: number;
    espeakPath: string;
    /** OpenAI-compatible speech endpoint (TTS_PROVIDER=openai). */
    baseUrl: string;
    model: string;
  };
  /** OpenAI-compatible chat endpoint for bots; undefined without OPENAI_API_KEY. */
  llm: { apiKey: string; baseUrl: string; model: string; timeoutMs: number } | undefined;
  records: {
    /** A file path, `:memory:`, or undefined when CALL_RECORDS_PATH=off. */
    path: string | undefined;
    storePii: boolean;
  };
  dashboard: {
    /** Never logged. Undefined → the dashboard, its socket and /calls are open. */
    token: string | undefined;
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

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** True for an http(s) URL on 127.0.0.0/8, localhost or [::1]. */
function isLoopbackUrl(url: string | undefined): boolean {
  if (url === undefined) return false;
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && (u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname));
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

/** Validates `env` (process.env by default) once and returns the typed config. */
export function loadConfig(env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): Config {
  let e: Env;
  try {
    e = envSchema<Env>({ schema: EnvSchema, data: { ...env }, dotenv: false });
  } catch (err) {
    // ajv names the variable (e.g. "env/PORT must be integer"); keep that, drop the noise.
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
  }
  const secrets = (e.DAILY_PINLESS_HMAC ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const s of secrets) {
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) {
      throw new ConfigError('invalid configuration: DAILY_PINLESS_HMAC must be a comma-separated list of base64 secrets');
    }
  }
  if (e.TTS_PROVIDER === 'openai' && !e.OPENAI_API_KEY) {
    throw new ConfigError('invalid configuration: TTS_PROVIDER=openai needs OPENAI_API_KEY');
  }
  const webhookSecrets = (e.DAILY_WEBHOOK_HMAC ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const s of webhookSecrets) {
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) {
      throw new ConfigError('invalid configuration: DAILY_WEBHOOK_HMAC must be a comma-separated list of base64 secrets');
    }
  }
  if (e.DAILY_WEBHOOK_BASIC_AUTH !== undefined && !/^[^:]+:.+$/.test(e.DAILY_WEBHOOK_BASIC_AUTH)) {
    throw new ConfigError('invalid configuration: DAILY_WEBHOOK_BASIC_AUTH must be user:password');
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
  return {
    nodeEnv: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    logMaskNumbers: e.LOG_MASK_NUMBERS,
    authFailures: { limit: e.AUTH_FAILURE_LIMIT, windowMs: e.AUTH_FAILURE_WINDOW_MS },
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    daily: {
      apiKey: e.DAILY_API_KEY,
      apiUrl: e.DAILY_API_URL ?? (emulatorEnabled ? undefined : 'https://api.daily.co/v1'),
      apiTimeoutMs: e.DAILY_API_TIMEOUT_MS,
      tokenMode: e.DAILY_TOKEN_MODE,
      domainId: e.DAILY_DOMAIN_ID,
      roomDeleteIntervalMs: e.DAILY_ROOM_DELETE_INTERVAL_MS,
      pinlessHmacSecrets: secrets,
      signatureWindowMs: e.SIGNATURE_WINDOW_MS,
      webhookHmacSecrets: webhookSecrets,
      webhookBasicAuth: e.DAILY_WEBHOOK_BASIC_AUTH,
      webhookReconcileGraceMs: e.DAILY_WEBHOOK_RECONCILE_GRACE_MS,
      callClient: e.CALL_CLIENT ?? (emulatorEnabled ? 'emulator' : 'daily'),
      chromiumPath: e.CHROMIUM_PATH,
      bundleUrl: e.DAILY_BUNDLE_URL,
    },
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
          opTimeoutMs: e.FLEET_OP_TIMEOUT_MS,
          rateLimits: e.DAILY_RATE_LIMITS,
        }
      : undefined,
    call: {
      sipEndpoints: e.DIALIN_SIP_ENDPOINTS,
      dialout: e.DAILY_DIALOUT,
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
      drainTimeoutMs: e.DRAIN_TIMEOUT_MS,
    },
    bots: {
      dir: e.BOTS_DIR ?? new URL('../bots/', import.meta.url).pathname,
      defaultBot: e.DEFAULT_BOT,
      routesFile: e.ROUTES_FILE,
    },
    tts: {
      provider: e.TTS_PROVIDER as Config['tts']['provider'],
      voice: e.TTS_VOICE,
      sampleRate: e.TTS_SAMPLE_RATE,
      espeakPath: e.ESPEAK_PATH,
      baseUrl: e.TTS_BASE_URL ?? e.LLM_BASE_URL,
      model: e.TTS_MODEL,
    },
    llm: e.OPENAI_API_KEY ? { apiKey: e.OPENAI_API_KEY, baseUrl: e.LLM_BASE_URL, model: e.LLM_MODEL, timeoutMs: e.LLM_TIMEOUT_MS } : undefined,
    records: { path: e.CALL_RECORDS_PATH === 'off' ? undefined : e.CALL_RECORDS_PATH, storePii: e.CALL_RECORDS_STORE_PII },
    dashboard: { token: e.DASHBOARD_TOKEN },
    emulator: {
      enabled: emulatorEnabled,
      host: e.EMULATOR_HOST,
      port: e.EMULATOR_PORT,
      numbers: e.EMULATOR_NUMBERS.split(',').map((n) => n.trim()).filter((n) => n.length > 0),
      apiKey: e.EMULATOR_API_KEY,
      rateLimits: e.EMULATOR_RATE_LIMITS,
    },
    resilience: {
      holdBudgetMs: e.HOLD_BUDGET_MS,
      fallbackSipUri: e.FALLBACK_SIP_URI,
      replicaId: e.REPLICA_ID ?? (os.hostname().toLowerCase().replace(/[^a-z0-9]/g, '').slice(-12) || 'local'),
      // Next to the call records; none when they are in memory or off.
      admittedPath:
        e.CALL_RECORDS_PATH === 'off' || e.CALL_RECORDS_PATH === ':memory:' ? undefined : path.join(path.dirname(e.CALL_RECORDS_PATH), 'admitted-calls.jsonl'),
      workerNice: e.WORKER_NICE,
    },
  };
}
