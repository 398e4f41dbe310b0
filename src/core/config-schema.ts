/**
 * Every environment variable patchbay reads, declared once: name, type, default and bounds (TypeBox).
 * `Env` is derived from it; src/core/config.ts (the one place that reads the environment) validates the
 * environment against it and shapes the typed `Config`.
 */
import { Type, type Static } from 'typebox';

const Int = (def: number, min = 0, description?: string) =>
  Type.Integer({ default: def, minimum: min, ...(description ? { description } : {}) });

export const EnvSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development' }),
  HOST: Type.String({ default: '0.0.0.0' }),
  PORT: Int(7860, 0, 'HTTP port of the service'),
  LOG_LEVEL: Type.Union(
    [
      Type.Literal('fatal'),
      Type.Literal('error'),
      Type.Literal('warn'),
      Type.Literal('info'),
      Type.Literal('debug'),
      Type.Literal('trace'),
      Type.Literal('silent'),
    ],
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
  /** Refused (401/429) webhook requests are logged as one summary line per source per this interval. */
  AUTH_FAILURE_LOG_INTERVAL_MS: Int(60_000, 100),

  // HTTP server: timeouts and connection caps (docs/operations.md, "Connections and timeouts")
  /** A client has this long to send its request headers. */
  HTTP_HEADERS_TIMEOUT_MS: Int(5_000, 100),
  /** … and this long for the whole request (headers and body); then 408 and the socket is closed. */
  HTTP_REQUEST_TIMEOUT_MS: Int(10_000, 100),
  /** An idle keep-alive socket is closed after this long. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Int(5_000, 100),
  /** A socket with no traffic either way (e.g. a client that stops reading its answer) is closed after this long. */
  HTTP_SOCKET_TIMEOUT_MS: Int(30_000, 100),
  /** Open sockets overall; 0 derives it from the descriptor limit (soft RLIMIT_NOFILE − 256, at most 10 000). */
  HTTP_MAX_CONNECTIONS: Int(0, 0),
  /** Open sockets per peer address (0: no cap). Behind a load balancer every socket has its address: raise it. */
  HTTP_MAX_CONNECTIONS_PER_SOURCE: Int(256, 0),
  /** Sockets kept for POST /dialin, POST /webhooks/daily and GET /health/* when the others fill up. */
  HTTP_PRIORITY_RESERVE: Int(64, 0),

  // Daily
  DAILY_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  DAILY_API_URL: Type.Optional(Type.String({ minLength: 1 })),
  DAILY_PINLESS_HMAC: Type.Optional(Type.String()),
  /** Domain webhooks (POST /webhooks/daily): base64 secret(s) of the webhook's `hmac`, comma-separated for rotation. */
  DAILY_WEBHOOK_HMAC: Type.Optional(Type.String()),
  /** Domain webhooks: `user:password` expected in `Authorization: Basic …` (the webhook's `basicAuth`). */
  DAILY_WEBHOOK_BASIC_AUTH: Type.Optional(Type.String({ minLength: 3 })),
  /**
   * Domain webhooks with neither DAILY_WEBHOOK_HMAC nor DAILY_WEBHOOK_BASIC_AUTH are refused unless this
   * is true (development against a Daily that signs nothing; never with NODE_ENV=production). The
   * embedded emulator signs its webhooks with a generated secret, so it needs no setting.
   */
  DAILY_WEBHOOK_ALLOW_UNSIGNED: Type.Boolean({ default: false }),
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
  /** Rooms waiting for deletion, at most, per replica; past it the oldest is left to expire by its `exp` (counted). */
  DAILY_ROOM_DELETE_BACKLOG_MAX: Int(100, 1),
  /** Where the daily client's Chromium lives (Debian's package by default). */
  CHROMIUM_PATH: Type.String({ default: '/usr/bin/chromium' }),
  /** daily-js `dailyConfig.bundlePathOverride`: where the call-machine bundle is loaded from (tests, offline). */
  DAILY_BUNDLE_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** shared: bot pages in a few browsers the service supervises (default); per-worker: a Chromium per worker. */
  BROWSER_LAYOUT: Type.Union([Type.Literal('shared'), Type.Literal('per-worker')], { default: 'shared' }),
  /** BROWSER_LAYOUT=shared: workers (bot pages) per browser; a browser crash ends at most this many calls. */
  BOTS_PER_BROWSER: Int(6, 1),

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
  /**
   * A lost replica's call whose bot Daily still lists in the room (the replica may only be cut off
   * from Redis) is looked at again this often until the bot has left (Daily asks for no more than one
   * presence query per 15 s).
   */
  FLEET_PRESENCE_RECHECK_MS: Int(15_000, 100),
  /** How far Daily's presence data may trail the room (Daily: up to 15 s). */
  FLEET_PRESENCE_LAG_MS: Int(15_000, 0),
  /** Every Redis command gives up after this (that command fails; the fleet degrades only per FLEET_DEGRADE_AFTER_MS). */
  FLEET_OP_TIMEOUT_MS: Int(500, 50),
  /** Budget of each Redis step of a webhook's answer (claim, reserve, enqueue, answer) and of the heartbeat: a slow Redis is not a down one. */
  FLEET_ADMIT_TIMEOUT_MS: Int(2_000, 50),
  /** A connected Redis that answered nothing this long counts as down (the fleet degrades). */
  FLEET_DEGRADE_AFTER_MS: Int(3_000, 100),
  /** /health/ready says 503 until Redis has been reached once, for at most this long after start-up (then the replica serves alone, loudly). */
  FLEET_READY_WAIT_MS: Int(10_000, 0),
  /** Daily REST limits per class, `class=limit/windowMs[/reserve]` (classes default, delete, start). */
  DAILY_RATE_LIMITS: Type.Optional(
    Type.String({
      pattern: '^\\s*(default|delete|start)\\s*=\\s*\\d+/\\d+(/\\d+)?\\s*(,\\s*(default|delete|start)\\s*=\\s*\\d+/\\d+(/\\d+)?\\s*)*$',
    }),
  ),

  // Call lifecycle
  /** SIP endpoints per room (Daily's `sip.num_endpoints`); dialin-ready fires once per endpoint. */
  DIALIN_SIP_ENDPOINTS: Type.Integer({ default: 1, minimum: 1, maximum: 5 }),
  /** Rooms allow dial-out (Daily's `enable_dialout`; needs an account approved for dial-out): `call.warmTransfer()`. */
  DAILY_DIALOUT: Type.Boolean({ default: false }),
  /** Call recording for bots and routes that do not say (`recording` in a bot): off, Daily's cloud-audio-only, or local files. */
  RECORDING: Type.Union([Type.Literal('off'), Type.Literal('daily'), Type.Literal('local')], { default: 'off' }),
  /** Local recordings' directory (default: `recordings` next to the call records). */
  RECORDINGS_DIR: Type.Optional(Type.String({ minLength: 1 })),
  /** Rooms are created with `enable_recording: cloud-audio-only` (default: when RECORDING=daily). */
  DAILY_RECORDING_ROOMS: Type.Optional(Type.Boolean()),
  /** Recordings (Daily's of patchbay's rooms, and local files) older than this many days are deleted; 0 keeps them. */
  RECORDING_RETENTION_DAYS: Type.Integer({ default: 0, minimum: 0 }),
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
  /**
   * A worker handed out to a call is replaced once that caller has left hold (connected, or the
   * call ended), at the latest this long after the hand-out: the replacement's start-up would take
   * the cores from the calls being connected (issue 27). 0 replaces it at once.
   */
  WORKER_REFILL_DEFER_MAX_MS: Int(8_000, 0),
  /** Extra environment variables (comma-separated names) passed to worker processes, e.g. a bot's own keys. */
  WORKER_ENV_PASSTHROUGH: Type.Optional(Type.String()),
  DRAIN_TIMEOUT_MS: Int(600_000, 0),
  /**
   * Warm rooms per replica (docs/operations.md "Warm rooms"): rooms with a bot already joined and
   * its SIP endpoint ready, so a call is connected with one pinlessCallUpdate. Default: 1 with the
   * embedded emulator (free), 0 with real Daily (an idle warm bot is billed participant time).
   */
  WARM_ROOMS: Type.Optional(Type.Integer({ minimum: 0, maximum: 200 })),
  /** A warm room is recycled (new room, new bot) after this long idle. */
  WARM_ROOM_MAX_AGE_MS: Int(600_000, 1000),
  /** Directory for synthesized speech shared by workers (greetings, repeated prompts); unset → per-worker memory only. */
  TTS_CACHE_DIR: Type.Optional(Type.String({ minLength: 1 })),
  /** Synthesized phrases kept in memory per worker. */
  TTS_CACHE_ENTRIES: Type.Integer({ default: 64, minimum: 0, maximum: 10_000 }),

  // Bots
  BOTS_DIR: Type.Optional(Type.String()),
  DEFAULT_BOT: Type.String({ default: 'default' }),
  /** Routing file (JSON, see docs/bots.md). Default: `<BOTS_DIR>/routes.json` when it exists. */
  ROUTES_FILE: Type.Optional(Type.String({ minLength: 1 })),

  // Speech and language services for bots (see docs/bots.md)
  /**
   * auto: espeak-ng with the daily client when installed, text-only otherwise (the emulator carries
   * words). `cartesia` and `elevenlabs` stream over the vendor's WebSocket (docs/voice.md).
   */
  TTS_PROVIDER: Type.Union(
    [
      Type.Literal('auto'),
      Type.Literal('espeak'),
      Type.Literal('text'),
      Type.Literal('openai'),
      Type.Literal('cartesia'),
      Type.Literal('elevenlabs'),
    ],
    { default: 'auto' },
  ),
  /** espeak-ng voice (`en-us`), OpenAI voice (`alloy`), or the vendor's voice id (Cartesia, ElevenLabs). */
  TTS_VOICE: Type.Optional(Type.String({ minLength: 1 })),
  CARTESIA_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** Cartesia's API base (`https://api.cartesia.ai` unless set); its SDK speaks `wss://` to it. */
  CARTESIA_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  ELEVENLABS_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** ElevenLabs' API base (`https://api.elevenlabs.io` unless set); http(s) becomes ws(s). */
  ELEVENLABS_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  TTS_SAMPLE_RATE: Type.Integer({ default: 16_000, minimum: 8_000, maximum: 48_000 }),
  ESPEAK_PATH: Type.String({ default: 'espeak-ng' }),
  /** Key for OpenAI-compatible LLM / TTS endpoints; unset → bots run offline (rule-based replies, local TTS). */
  OPENAI_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * The bots' LLM vendor (src/voice/llm.ts, through the Vercel AI SDK). Unset: the first whose key
   * is set, in this order: openai, anthropic, google. Each reads its own key and base URL.
   */
  LLM_PROVIDER: Type.Optional(
    Type.Union([Type.Literal('openai'), Type.Literal('openai-compatible'), Type.Literal('anthropic'), Type.Literal('google')]),
  ),
  /** OpenAI or an OpenAI-compatible server (also the default base of TTS_PROVIDER=openai). */
  LLM_BASE_URL: Type.String({ default: 'https://api.openai.com/v1' }),
  /** Unset: gpt-4o-mini (openai), claude-haiku-4-5 (anthropic), gemini-2.5-flash (google). */
  LLM_MODEL: Type.Optional(Type.String({ minLength: 1 })),
  ANTHROPIC_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** Anthropic's API base, e.g. a proxy or a test stand-in (`http://host:port/v1`); unset: Anthropic's. */
  ANTHROPIC_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  GOOGLE_GENERATIVE_AI_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** Google's Generative Language API base; unset: Google's. */
  GOOGLE_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  LLM_TIMEOUT_MS: Int(10_000, 100),
  TTS_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * The bots' speech-to-text (src/voice/stt.ts): `daily` (Daily's transcription, the default) or a
   * streaming vendor fed the caller's audio. A bot may choose its own (`stt:` in defineBot).
   */
  STT_PROVIDER: Type.Union([Type.Literal('daily'), Type.Literal('deepgram'), Type.Literal('openai'), Type.Literal('assemblyai')], {
    default: 'daily',
  }),
  /** When a vendor fails for good during a call: `daily` switches the call to Daily's transcription; `none` does not. */
  STT_FALLBACK: Type.Union([Type.Literal('daily'), Type.Literal('none')], { default: 'daily' }),
  DEEPGRAM_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** Deepgram's API base (a proxy, a region, a test): `http://host:port` means plain ws:// for the live socket. */
  DEEPGRAM_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  ASSEMBLYAI_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** AssemblyAI's streaming base (`wss://streaming.assemblyai.com`; https:// is taken as wss://); its SDK allows wss only. */
  ASSEMBLYAI_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** OpenAI's API base for STT_PROVIDER=openai (`/audio/transcriptions`); unset: LLM_BASE_URL unless LLM_PROVIDER=openai-compatible, else OpenAI's. */
  OPENAI_STT_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * The pipeline of bots that offer both (`onCall` and `realtime` in defineBot, like
   * bots/voice-assistant.ts): `cascade` (speech-to-text → LLM → TTS: their `onCall`), or a
   * speech-to-speech model, `openai-realtime` or `gemini-live` (their `realtime`, on that vendor).
   * A bot with only one of the two runs it whatever this says.
   */
  VOICE_PIPELINE: Type.Union([Type.Literal('cascade'), Type.Literal('openai-realtime'), Type.Literal('gemini-live')], {
    default: 'cascade',
  }),
  /** OpenAI's Realtime API base for speech-to-speech bots (`https://api.openai.com/v1` unless set); the SDK speaks wss:// to it. */
  OPENAI_REALTIME_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** Gemini Live (speech-to-speech bots): its key (GOOGLE_API_KEY is taken when unset) and API base. */
  GEMINI_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  GOOGLE_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  GEMINI_BASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** Unset: gpt-4o-mini-tts (openai), sonic-3 (cartesia), eleven_flash_v2_5 (elevenlabs). */
  TTS_MODEL: Type.Optional(Type.String({ minLength: 1 })),

  // Call records and dashboard (docs/dashboard.md)
  /** SQLite file of call records; `:memory:` keeps them for this process only, `off` disables them. */
  CALL_RECORDS_PATH: Type.String({ default: './data/calls.db', minLength: 1 }),
  /**
   * The admitted call ids (replay protection across restarts), independent of the records: unset →
   * `admitted-calls.jsonl` next to a CALL_RECORDS_PATH file, or in `./data` when records are `off`;
   * `off` → memory only (a replay after a restart is admitted again).
   */
  ADMITTED_LOG_PATH: Type.Optional(Type.String({ minLength: 1 })),
  /** Store full caller/callee numbers, DTMF digits and transcripts in records (default: masked / left out). */
  CALL_RECORDS_STORE_PII: Type.Boolean({ default: false }),
  /** PostgreSQL URL for call records (all replicas share it); when set, CALL_RECORDS_PATH is not used. */
  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** Delete call records that ended more than this many days ago (0: keep them). */
  CALL_RECORDS_RETENTION_DAYS: Int(0, 0),
  /** Calls with unwritten record changes kept in memory while the database is slow or down. */
  CALL_RECORDS_QUEUE_MAX: Int(10_000, 1),
  /**
   * This replica's id (records, fleet, room names `pb-<id>-…` so a restart finds its leftovers).
   * Letters and digits only (it is a room-name prefix). Default: from the host name.
   */
  REPLICA_ID: Type.Optional(Type.String({ pattern: '^[a-z0-9]{1,20}$' })),

  // Resilience (docs/RELIABILITY.md): hold budget, fallback, worker priority
  /** How long a caller may wait on hold for us (admission estimate, pre-forward retries, fallback). */
  HOLD_BUDGET_MS: Int(30_000, 1000),
  /** A Daily room SIP URI (e.g. a human queue) for calls we cannot serve; unset → a built-in apology bot. */
  FALLBACK_SIP_URI: Type.Optional(Type.String({ pattern: '^sips?:[^@\\s]+@[^@\\s]+$' })),
  /** Added to workers' CPU nice value (0 = same priority as the server). */
  WORKER_NICE: Type.Integer({ default: 5, minimum: 0, maximum: 19 }),
  /** When set, GET /dashboard, /ws/events and GET /calls need it (`?token=` or `Authorization: Bearer`). */
  DASHBOARD_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  /**
   * Host names (comma-separated, optional :port) the dashboard, its socket and /calls answer to
   * besides localhost, 127.0.0.1, [::1] and HOST. Setting it also opens them to non-loopback peers.
   */
  DASHBOARD_ALLOWED_HOSTS: Type.Optional(Type.String({ minLength: 1 })),
  /** Dashboard sockets per source address (of 64 in all). */
  DASHBOARD_MAX_CLIENTS_PER_SOURCE: Int(8, 1),

  // Outbound calls (POST /calls, docs/outbound.md)
  /** Bearer token of `POST /calls`; unset → outbound calls are off (the endpoint answers 404). */
  CALLS_API_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  /** Outbound calls dialling or talking at once on this replica (inbound calls keep the rest of MAX_CONCURRENT_BOTS). */
  OUTBOUND_MAX_CONCURRENT: Int(2, 1),
  /** Fleet mode: outbound calls dialling or talking at once in the whole fleet (slots in Redis); unset → per replica only. */
  OUTBOUND_FLEET_MAX_CONCURRENT: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Attempts per outbound call when the far end is busy or does not answer (1 = no retry). */
  OUTBOUND_MAX_ATTEMPTS: Type.Integer({ default: 3, minimum: 1, maximum: 10 }),
  /** Wait before the first retry of a busy / unanswered outbound call; doubled at each further attempt. */
  OUTBOUND_RETRY_MS: Int(60_000, 0),
  /** How long the far end may ring before the attempt counts as no-answer. */
  OUTBOUND_RING_TIMEOUT_MS: Int(30_000, 1000),
  /** Status webhook of every outbound call (a request's `statusUrl` wins); signed with OUTBOUND_WEBHOOK_SECRET. */
  OUTBOUND_STATUS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** HMAC-SHA256 key (base64) of the status webhook's `X-Webhook-Signature`; unset → CALLS_API_TOKEN's bytes. */
  OUTBOUND_WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  /** Voicemail detection on outbound calls' answers (src/voice/voicemail.ts). */
  VOICEMAIL_DETECT: Type.Boolean({ default: true }),
  /** Callbacks instead of hold: a caller past the hold budget is offered a callback by a built-in bot (docs/outbound.md). */
  CALLBACK_OFFER: Type.Boolean({ default: false }),
  /** Callback offer bots at once on this replica (beside MAX_CONCURRENT_BOTS); beyond them callers are refused as before. */
  CALLBACK_OFFER_MAX_CONCURRENT: Int(4, 1),

  // Embedded emulator (used when DAILY_API_KEY is unset)
  EMULATOR_HOST: Type.String({ default: '127.0.0.1' }),
  EMULATOR_PORT: Int(7861, 0),
  /** Bearer key of the embedded emulator (random when unset); the CLI uses it too (docs/cli.md). */
  EMULATOR_API_KEY: Type.Optional(Type.String({ minLength: 8 })),
  /** Phone numbers the embedded emulator routes to this service (comma-separated). */
  EMULATOR_NUMBERS: Type.String({ default: '+15550001000,+15550001001,+15550001002,+15550001003,+15550001004' }),
  /** Daily's REST rate limits in the embedded emulator (docs/emulator.md); `false` turns them off. */
  EMULATOR_RATE_LIMITS: Type.Boolean({ default: true }),
});
export type Env = Static<typeof EnvSchema>;
