/**
 * The service's entry point: validate config once, start (with the embedded emulator when no
 * DAILY_API_KEY is set), listen, and drain on SIGTERM/SIGINT (a second signal forces exit).
 */
import closeWithGrace from 'close-with-grace';
import { ConfigError, loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { RecordsError } from '../records/store.js';
import { fdLimits } from '../server/plugins/connection-guard.js';
import { exposureWarning } from '../server/routes/dashboard-auth.js';
import { createRuntime } from './runtime.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`patchbay: ${err.message}`);
    process.exit(1);
  }
  throw err;
}

const logger = createLogger({
  level: config.logLevel,
  name: 'patchbay',
  maskNumbers: config.logMaskNumbers,
  // Scrubbed from every line wherever they turn up (docs/operations.md, "Logs").
  secrets: [
    config.daily.apiKey,
    ...config.daily.pinlessHmacSecrets,
    ...config.daily.webhookHmacSecrets,
    config.daily.webhookBasicAuth,
    config.dashboard.token,
    config.llm?.apiKey,
    config.stt.deepgram?.apiKey,
    config.stt.assemblyai?.apiKey,
    config.stt.openai?.apiKey,
    config.realtime.gemini?.apiKey,
    config.tts.apiKey,
    config.emulator.apiKey,
  ],
});
checkFdLimit();
let rt: Awaited<ReturnType<typeof createRuntime>>;
try {
  rt = await createRuntime(config, logger);
} catch (err) {
  // A corrupt or unwritable call-records file: one clear line naming it, nothing started.
  if (err instanceof RecordsError) {
    logger.fatal({ path: err.path, code: err.code }, err.message);
    process.exit(1);
  }
  throw err;
}

// SIGHUP reloads routes and bots (src/app/reload.ts, docs/operations.md), it does not stop the service.
const graceful = { delay: config.workers.drainTimeoutMs + config.workers.closeTimeoutMs * 3 + 5_000, logger, skip: ['SIGHUP' as const] };
closeWithGrace(graceful, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'fatal error; shutting down');
  logger.info({ signal, drainTimeoutMs: config.workers.drainTimeoutMs }, 'draining: no new calls; live calls may finish');
  await rt.shutdown(err ? 0 : config.workers.drainTimeoutMs);
  logger.info('stopped');
});

try {
  const url = await rt.listen();
  logger.info(
    {
      url,
      dialin: `${url}/dialin`,
      callClient: config.daily.callClient,
      maxConcurrentBots: config.admission.maxConcurrentBots,
      idleWorkers: config.workers.idle,
    },
    'patchbay listening',
  );
  const exposed = exposureWarning(config);
  if (exposed) logger.warn({ host: config.host }, exposed);
  if (rt.emulator) {
    logger.info(
      { numbers: config.emulator.numbers, emulator: rt.emulator.origin },
      `place a call with: npm run call -- --to ${config.emulator.numbers[0] ?? '<number>'}`,
    );
  }
} catch (err) {
  logger.error({ err }, 'could not start');
  await rt.shutdown(0).catch(() => undefined);
  process.exit(1);
}

/**
 * Node raises its soft descriptor limit to the hard limit at start-up, so the hard limit is what
 * counts: each socket needs a descriptor, and HTTP_MAX_CONNECTIONS=0 derives the cap from it.
 * A low one is said once, with how to raise it (docs/operations.md).
 */
function checkFdLimit(): void {
  const l = fdLimits();
  if (l && l.soft < 4096) {
    logger.warn(
      { fdLimit: l.soft, hardLimit: l.hard },
      'the descriptor limit is low (each socket needs one): raise it (ulimit -Hn -n before start, systemd LimitNOFILE=, docker --ulimit nofile=)',
    );
  }
}
