/**
 * `npm run emulator -- [--port 7861] [--api-key KEY] [--host 127.0.0.1] [--realistic] [--no-rate-limits]
 *                      [--number +15550001000 --room-creation-api URL [--hmac BASE64]]`
 *
 * Runs the Daily emulator standalone. Reads no environment (flags only) and stops on
 * SIGINT/SIGTERM.
 */
import { Command, Option } from 'commander';
import { createLogger } from '../core/logger.js';
import { createEmulator, realisticLatencies } from './server.js';
import { CALL_CLIENT_WS_PATH } from './protocol.js';

const program = new Command()
  .name('npm run emulator --')
  .description('Run the local Daily emulator (REST under /v1, call clients over WebSocket, control API under /_emulator).')
  .option('--host <host>', 'address to bind', '127.0.0.1')
  .option('--port <port>', 'port (0 = ephemeral)', (v) => Number.parseInt(v, 10), 7861)
  .option('--api-key <key>', 'bearer key the REST API accepts', 'emulator-key')
  .option('--domain <name>', 'emulated Daily domain name', 'emulator')
  .option('--hold-timeout-ms <ms>', 'how long a call stays on hold before the timeout message', (v) => Number.parseInt(v, 10), 60_000)
  .option('--realistic', 'use realistic latencies instead of zero')
  .option('--no-rate-limits', "do not enforce Daily's REST rate limits (on by default)")
  .addOption(
    new Option('--rate-limit-scope <scope>', 'domain: one set of limits for every client, like Daily; client: one per remote address')
      .choices(['domain', 'client'])
      .default('domain'),
  )
  .option('--number <e164...>', 'phone numbers to configure for pinless dial-in')
  .option('--room-creation-api <url>', 'webhook URL for the numbers given with --number')
  .option('--hmac <base64>', 'pinless webhook HMAC secret')
  .option('--log-level <level>', 'pino level', 'info')
  .showHelpAfterError();

program.parse();
const opts = program.opts<{
  host: string;
  port: number;
  apiKey: string;
  domain: string;
  holdTimeoutMs: number;
  realistic?: boolean;
  rateLimits: boolean;
  rateLimitScope: 'domain' | 'client';
  number?: string[];
  roomCreationApi?: string;
  hmac?: string;
  logLevel: string;
}>();

if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65_535) program.error('--port must be 0..65535');
if (opts.number && !opts.roomCreationApi) program.error('--number needs --room-creation-api');

const logger = createLogger({ level: opts.logLevel, name: 'emulator' });
const emulator = await createEmulator({
  host: opts.host,
  port: opts.port,
  apiKey: opts.apiKey,
  domainName: opts.domain,
  logger,
  holdTimeoutMs: opts.holdTimeoutMs,
  rateLimits: { enabled: opts.rateLimits, scope: opts.rateLimitScope },
  ...(opts.realistic ? { latencies: realisticLatencies } : {}),
});
if (opts.number && opts.roomCreationApi) {
  emulator.setPinlessDialin(
    opts.number.map((n) => ({ phone_number: n, room_creation_api: opts.roomCreationApi!, ...(opts.hmac ? { hmac: opts.hmac } : {}) })),
  );
}

const wsOrigin = emulator.origin.replace(/^http/, 'ws');
console.log(`Daily emulator listening
  REST API      ${emulator.apiUrl}   (Authorization: Bearer <--api-key>)
  call clients  ${wsOrigin}${CALL_CLIENT_WS_PATH}
  control API   ${emulator.origin}/_emulator   (calls, faults, rate-limits, state)
  rate limits   ${emulator.rateLimits.enabled ? `Daily's, ${opts.rateLimitScope}-wide` : 'off'}
  callDomain    ${emulator.callDomain}`);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping the emulator');
  const force = setTimeout(() => process.exit(1), 5_000);
  force.unref();
  emulator.close().then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'emulator close failed');
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
