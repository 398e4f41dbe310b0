/**
 * `patchbay` — provisioning CLI (docs/cli.md).
 *
 *   patchbay start [--bots dir] [--routes file]   the service (embedded emulator unless DAILY_API_KEY)
 *   patchbay dialin list|set|remove        the domain's pinless dial-in entries
 *   patchbay webhooks list|create|reactivate|delete   Daily's domain webhooks
 *
 * Connection: --api-url / --api-key, else DAILY_API_URL / DAILY_API_KEY (Daily), else the local
 * emulator at http://EMULATOR_HOST:EMULATOR_PORT/v1 with EMULATOR_API_KEY — all read through
 * src/core/config.ts. Daily's errors are printed as `{error, info}` with the HTTP status; exit code 1.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig } from '../core/config.js';
import { DailyRestClient } from '../daily/rest.js';
import type { DailyWebhook } from '../daily/types.js';
import { DOMAIN_EVENT_TYPES } from '../daily/webhook-events.js';
import { DailyApiError, errorMessage } from '../core/errors.js';
import { diffEntries, planRemove, planSet, readEntries, redactEntry, writeLegacy, type PinlessEntry, type Store } from './dialin.js';
import { start, StartUsageError } from './start.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv | Record<string, string | undefined>;
}

interface GlobalOpts {
  apiUrl?: string;
  apiKey?: string;
  timeoutMs?: string;
  json?: boolean;
}

class UsageError extends Error {}

type WebhookJson = DailyWebhook;

function connect(g: GlobalOpts, io: Io): { daily: DailyRestClient; apiUrl: string; target: 'daily' | 'emulator' } {
  const config = loadConfig(io.env);
  const apiKey = g.apiKey ?? config.daily.apiKey ?? config.emulator.apiKey;
  const apiUrl = g.apiUrl ?? config.daily.apiUrl ?? `http://${config.emulator.host}:${config.emulator.port}/v1`;
  if (!apiKey) {
    throw new UsageError(
      'no API key: set DAILY_API_KEY (Daily), or EMULATOR_API_KEY to the key the emulator was started with, or pass --api-key',
    );
  }
  const timeoutMs = g.timeoutMs === undefined ? config.daily.apiTimeoutMs : Number(g.timeoutMs);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100) throw new UsageError('--timeout-ms must be an integer >= 100');
  return {
    daily: new DailyRestClient({ apiUrl, apiKey, timeoutMs }),
    apiUrl,
    target: config.daily.apiKey || g.apiKey ? 'daily' : 'emulator',
  };
}

const mask = (s: string | null | undefined): string => (s ? `••••${s.slice(-4)}` : '(none)');

function printSecret(io: Io, what: string, value: string, envVar: string): void {
  io.out(`${what} (shown once, it is not printed again): ${value}`);
  io.out(`  → put it in the service's environment: ${envVar}=${value}`);
}

function entryFields(o: {
  roomCreationApi?: string;
  hmac?: string;
  holdMusicUrl?: string;
  timeoutMessage?: string;
  namePrefix?: string;
}): Partial<PinlessEntry> {
  return {
    ...(o.roomCreationApi === undefined ? {} : { room_creation_api: o.roomCreationApi }),
    ...(o.hmac === undefined ? {} : { hmac: o.hmac }),
    ...(o.holdMusicUrl === undefined ? {} : { hold_music_url: o.holdMusicUrl }),
    ...(o.timeoutMessage === undefined ? {} : { timeout_config: { message: o.timeoutMessage } }),
    ...(o.namePrefix === undefined ? {} : { name_prefix: o.namePrefix }),
  };
}

export function buildProgram(io: Io): Command {
  const program = new Command('patchbay')
    .description("patchbay's provisioning CLI: Daily pinless dial-in entries and domain webhooks (docs/cli.md)")
    .option('--api-url <url>', 'Daily REST API base (default: DAILY_API_URL, or the local emulator)')
    .option('--api-key <key>', 'API key (default: DAILY_API_KEY, or EMULATOR_API_KEY for the emulator)')
    .option('--timeout-ms <ms>', 'per-request timeout (default: DAILY_API_TIMEOUT_MS)')
    .option('--json', 'machine-readable output')
    .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: (s) => io.err(s.replace(/\n$/, '')) })
    .exitOverride()
    .showHelpAfterError();
  const cli: Cli = { io, g: () => program.opts<GlobalOpts>() };
  startCommand(program);
  const dialin = program.command('dialin').description('pinless dial-in entries (phone numbers and SIP interconnect)');
  dialinListCommand(dialin, cli);
  dialinSetCommand(dialin, cli);
  dialinRemoveCommand(dialin, cli);
  const webhooks = program.command('webhooks').description("Daily's domain webhooks (POST /webhooks)");
  webhooksListCommand(webhooks, cli);
  webhooksCreateCommand(webhooks, cli);
  webhooksReactivateCommand(webhooks, cli);
  webhooksDeleteCommand(webhooks, cli);
  return program;
}

/** What every sub-command's action reads: where to print, and the global options (parsed by then). */
interface Cli {
  io: Io;
  g(): GlobalOpts;
}

// ───────────────────────────── start ─────────────────────────────

function startCommand(program: Command): void {
  program
    .command('start')
    .description('start the service (the embedded Daily emulator unless DAILY_API_KEY is set) with your bots')
    .option('--bots <dir>', 'directory of bot modules (default: BOTS_DIR, or the example bots)')
    .option('--routes <file>', 'routing file (default: ROUTES_FILE, or <bots>/routes.json when it exists)')
    .option('--port <port>', 'HTTP port (default: PORT)')
    .action(async (o: { bots?: string; routes?: string; port?: string }) => {
      try {
        // The service reads the process environment (src/core/config.ts) and runs until a signal.
        await start(o, process.env);
      } catch (err) {
        if (err instanceof StartUsageError) throw new UsageError(err.message);
        throw err;
      }
    });
}

// ───────────────────────────── dialin ─────────────────────────────

const storeOpt = () => new Option('--legacy', "use the domain's pinless_dialin property (whole array) instead of /domain-dialin-config");

function dialinListCommand(dialin: Command, { io, g }: Cli): void {
  dialin
    .command('list')
    .description('list the entries (secrets masked)')
    .addOption(storeOpt())
    .action(async (o: { legacy?: boolean }) => {
      const { daily } = connect(g(), io);
      const entries = await readEntries(daily, o.legacy ? 'legacy' : 'config');
      if (g().json) {
        io.out(
          JSON.stringify(
            entries.map((s) => ({ ...(s.id ? { id: s.id } : {}), ...redactEntry(s.entry) })),
            null,
            2,
          ),
        );
        return;
      }
      if (entries.length === 0) io.out('no pinless dial-in entries');
      for (const s of entries) printEntry(io, s.entry, s.id);
    });
}

function printEntry(io: Io, e: PinlessEntry, id: string | undefined): void {
  io.out(`${e.phone_number ?? e.sip_uri ?? '(sip interconnect)'}${id ? `  [${id}]` : ''}`);
  if (e.phone_number && e.sip_uri) io.out(`    sip_uri: ${e.sip_uri}`);
  io.out(`    room_creation_api: ${e.room_creation_api ?? '(unset)'}`);
  io.out(`    hmac: ${mask(e.hmac)}`);
  if (e.name_prefix) io.out(`    name_prefix: ${e.name_prefix}`);
  if (e.hold_music_url) io.out(`    hold_music_url: ${e.hold_music_url}`);
  if (e.timeout_config?.message) io.out(`    timeout_config.message: ${e.timeout_config.message}`);
}

type SetOpts = Record<string, string | boolean | undefined>;

function dialinSetCommand(dialin: Command, cli: Cli): void {
  dialin
    .command('set')
    .description('add or change one entry; every other entry is kept')
    .argument('[target]', 'phone number (E.164) or SIP URI of the entry')
    .option('--sip-interconnect', 'add a new SIP interconnect entry (Daily assigns its SIP URI)')
    .option('--room-creation-api <url>', 'the webhook Daily calls for each call (e.g. https://bots.example.com/dialin)')
    .option('--hmac <base64>', 'signing secret for that webhook')
    .option('--generate-hmac', 'generate a new signing secret (printed once)')
    .option('--hold-music-url <url>', 'hold music while the call waits')
    .option('--timeout-message <text>', 'what the caller hears when no bot answers in time (timeout_config.message)')
    .option('--name-prefix <prefix>', 'name_prefix')
    .option('--dry-run', 'show the change; write nothing')
    .addOption(storeOpt())
    .action((target: string | undefined, o: SetOpts) => dialinSet(cli, target, o));
}

/** The options of `dialin set`, checked, as the entry's fields (and the generated secret, if any). */
function setFields(target: string | undefined, o: SetOpts): { fields: Partial<PinlessEntry>; generated: string | undefined } {
  if (!target && !o.sipInterconnect) throw new UsageError('give the entry (phone number or SIP URI), or --sip-interconnect');
  if (target && o.sipInterconnect) throw new UsageError('--sip-interconnect adds a new entry: give no target');
  if (o.hmac && o.generateHmac) throw new UsageError('--hmac and --generate-hmac exclude each other');
  for (const k of ['roomCreationApi', 'holdMusicUrl'] as const) {
    const v = o[k];
    if (typeof v === 'string' && !/^https?:\/\/\S+$/.test(v))
      throw new UsageError(`--${k === 'roomCreationApi' ? 'room-creation-api' : 'hold-music-url'} must be an http(s) URL`);
  }
  if (typeof o.hmac === 'string' && !/^[A-Za-z0-9+/]+={0,2}$/.test(o.hmac)) throw new UsageError('--hmac must be base64');
  const generated = o.generateHmac ? randomBytes(32).toString('base64') : undefined;
  const fields = entryFields({
    ...(typeof o.roomCreationApi === 'string' ? { roomCreationApi: o.roomCreationApi } : {}),
    ...(typeof o.hmac === 'string' ? { hmac: o.hmac } : generated ? { hmac: generated } : {}),
    ...(typeof o.holdMusicUrl === 'string' ? { holdMusicUrl: o.holdMusicUrl } : {}),
    ...(typeof o.timeoutMessage === 'string' ? { timeoutMessage: o.timeoutMessage } : {}),
    ...(typeof o.namePrefix === 'string' ? { namePrefix: o.namePrefix } : {}),
  });
  if (Object.keys(fields).length === 0)
    throw new UsageError('nothing to set: give at least one of --room-creation-api, --hmac, --hold-music-url, --timeout-message');
  return { fields, generated };
}

async function dialinSet({ io, g }: Cli, target: string | undefined, o: SetOpts): Promise<void> {
  const { fields, generated } = setFields(target, o);
  const store: Store = o.legacy ? 'legacy' : 'config';
  const { daily } = connect(g(), io);
  const stored = await readEntries(daily, store);
  const before = stored.map((s) => s.entry);
  const plan = planSet(before, { ...(target ? { target } : {}), newSip: o.sipInterconnect === true, fields });
  for (const l of diffEntries(before, plan.next)) io.out(l);
  if (o.dryRun) {
    io.out('dry run: nothing written');
    return;
  }
  const entry = plan.next[plan.index]!;
  if (store === 'legacy') await writeLegacy(daily, plan.next);
  else if (plan.created) {
    const res = await daily.createDialinConfig(entry);
    if (res?.id) io.out(`id: ${res.id}`);
    if (!entry.sip_uri && res?.config?.sip_uri) io.out(`sip_uri: ${res.config.sip_uri}`);
  } else await daily.updateDialinConfig(stored[plan.index]!.id!, entry);
  io.out(plan.created ? 'added' : 'updated');
  if (generated) printSecret(io, 'hmac', generated, 'DAILY_PINLESS_HMAC');
}

function dialinRemoveCommand(dialin: Command, { io, g }: Cli): void {
  dialin
    .command('remove')
    .description('remove one entry; every other entry is kept')
    .argument('<target>', 'phone number (E.164) or SIP URI of the entry')
    .option('--dry-run', 'show the change; write nothing')
    .addOption(storeOpt())
    .action(async (target: string, o: { dryRun?: boolean; legacy?: boolean }) => {
      const store: Store = o.legacy ? 'legacy' : 'config';
      const { daily } = connect(g(), io);
      const stored = await readEntries(daily, store);
      const before = stored.map((s) => s.entry);
      const next = planRemove(before, target);
      for (const l of diffEntries(before, next)) io.out(l);
      if (o.dryRun) {
        io.out('dry run: nothing written');
        return;
      }
      if (store === 'legacy') await writeLegacy(daily, next);
      else {
        for (const s of stored) {
          if (!next.includes(s.entry)) await daily.deleteDialinConfig(s.id!);
        }
      }
      io.out('removed');
    });
}

// ───────────────────────────── webhooks ─────────────────────────────

const maskedHook = (w: WebhookJson) => ({ ...w, hmac: mask(w.hmac), basicAuth: w.basicAuth ? mask(w.basicAuth) : null });

function printHook({ io, g }: Cli, w: WebhookJson): void {
  if (g().json) {
    io.out(JSON.stringify(maskedHook(w), null, 2));
    return;
  }
  io.out(`${w.uuid}  ${w.state ?? '?'}  failedCount=${w.failedCount ?? 0}  ${w.url}`);
  io.out(`    retryType: ${w.retryType ?? 'circuit-breaker'}  eventTypes: ${(w.eventTypes ?? []).join(', ') || '(none)'}`);
  io.out(`    hmac: ${mask(w.hmac)}  basicAuth: ${w.basicAuth ? 'set' : 'none'}  lastMomentPushed: ${w.lastMomentPushed ?? 'never'}`);
  if (w.state === 'FAILED') io.out(`    → reactivate with: patchbay webhooks reactivate ${w.uuid}`);
}

function webhooksListCommand(webhooks: Command, cli: Cli): void {
  const { io, g } = cli;
  webhooks
    .command('list')
    .description('list webhooks with their state and failedCount (secrets masked)')
    .action(async () => {
      const { daily } = connect(g(), io);
      const all = await daily.listWebhooks({ policy: 'admin' });
      if (all.length === 0 && !g().json) io.out('no webhooks');
      if (g().json) io.out(JSON.stringify(all.map(maskedHook), null, 2));
      else for (const w of all) printHook(cli, w);
    });
}

interface CreateOpts {
  url: string;
  eventTypes: string;
  retryType: string;
  hmac?: string;
  basicAuth?: string;
  generateBasicAuth?: boolean;
}

function webhooksCreateCommand(webhooks: Command, cli: Cli): void {
  webhooks
    .command('create')
    .description('create a webhook (Daily first checks that the URL answers 200)')
    .requiredOption('--url <url>', "where Daily posts events: this service's /webhooks/daily")
    .option('--event-types <list>', 'comma-separated event types', DOMAIN_EVENT_TYPES.join(','))
    .addOption(new Option('--retry-type <type>', 'retry behaviour').choices(['circuit-breaker', 'exponential']).default('exponential'))
    .option('--hmac <base64>', 'signing secret (default: Daily generates one, printed once)')
    .option('--basic-auth <user:password>', 'credentials Daily sends as Authorization: Basic (printed once)')
    .option('--generate-basic-auth', 'generate basic-auth credentials (printed once)')
    .action((o: CreateOpts) => webhooksCreate(cli, o));
}

async function webhooksCreate(cli: Cli, o: CreateOpts): Promise<void> {
  const { io, g } = cli;
  if (!/^https?:\/\/\S+$/.test(o.url)) throw new UsageError('--url must be an http(s) URL');
  if (o.basicAuth && o.generateBasicAuth) throw new UsageError('--basic-auth and --generate-basic-auth exclude each other');
  if (o.basicAuth !== undefined && !/^[^:]+:.+$/.test(o.basicAuth)) throw new UsageError('--basic-auth must be user:password');
  const basicAuth = o.generateBasicAuth ? `daily:${randomBytes(18).toString('base64url')}` : o.basicAuth;
  const eventTypes = o.eventTypes
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const { daily } = connect(g(), io);
  const w = await daily.createWebhook({
    url: o.url,
    eventTypes,
    retryType: o.retryType,
    ...(o.hmac ? { hmac: o.hmac } : {}),
    ...(basicAuth ? { basicAuth } : {}),
  });
  printHook(cli, w);
  if (!o.hmac && w.hmac) printSecret(io, 'hmac', w.hmac, 'DAILY_WEBHOOK_HMAC');
  else if (o.hmac) io.out('  → the service needs the same secret: DAILY_WEBHOOK_HMAC');
  if (basicAuth && o.generateBasicAuth) printSecret(io, 'basicAuth', basicAuth, 'DAILY_WEBHOOK_BASIC_AUTH');
  else if (basicAuth) io.out('  → the service needs the same credentials: DAILY_WEBHOOK_BASIC_AUTH');
}

function webhooksReactivateCommand(webhooks: Command, cli: Cli): void {
  webhooks
    .command('reactivate')
    .description('re-verify the URL and turn a FAILED webhook back on')
    .argument('<uuid>')
    .action(async (uuid: string) => {
      const { daily } = connect(cli.g(), cli.io);
      const cur = await daily.getWebhook(uuid, { policy: 'admin' });
      // Daily: updating a webhook with the same URL re-verifies it and re-activates it.
      const w = await daily.updateWebhook(uuid, { url: cur.url });
      printHook(cli, w);
    });
}

function webhooksDeleteCommand(webhooks: Command, { io, g }: Cli): void {
  webhooks
    .command('delete')
    .description('delete a webhook')
    .argument('<uuid>')
    .action(async (uuid: string) => {
      const { daily } = connect(g(), io);
      await daily.deleteWebhook(uuid);
      io.out(`deleted ${uuid}`);
    });
}

/** Runs the CLI; resolves with the exit code (never calls process.exit). */
export async function main(
  argv: string[],
  io: Io = { out: (l) => console.log(l), err: (l) => console.error(l), env: process.env },
): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; commander already printed the usage problem.
      return err.exitCode;
    }
    if (err instanceof DailyApiError) {
      if (err.status !== undefined) {
        io.err(`Daily API error: HTTP ${err.status}`);
        io.err(JSON.stringify({ error: err.dailyError ?? null, info: err.info ?? null }));
      } else {
        io.err(`could not reach the Daily API: ${err.message}`);
      }
      return 1;
    }
    io.err(`error: ${errorMessage(err)}`);
    return err instanceof UsageError ? 2 : 1;
  }
}

// Run directly (`node dist/src/cli/index.js …` in the Docker image, which has no bin/).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv);
}
