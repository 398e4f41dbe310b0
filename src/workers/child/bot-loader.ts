/** Loads bot modules from the bots directory by name; the default export must come from `defineBot`. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PatchbayError, errorMessage } from '../../core/errors.js';
import { isBot, type Bot } from '../../sdk/index.js';
import { botForPipeline } from '../../sdk/pipeline.js';
import type { S2sProviderName } from '../../voice/s2s.js';
import { APOLOGY_BOT, botSourceHash, resolveBotFile } from '../../core/bot-files.js';
import { CALLBACK_OFFER_BOT } from '../../core/callback.js';

/** The built-in bots (never files in the bots directory) and their modules next to this one. */
const BUILTIN_BOTS: Record<string, string> = { [APOLOGY_BOT]: 'apology-bot', [CALLBACK_OFFER_BOT]: 'callback-offer-bot' };

export { resolveBotFile };

export interface LoadedBot {
  bot: Bot;
  file: string;
  /** The bot's declared `version`, else `hash`. */
  version: string;
  /** The hash of its file and what it imports from the bots directory (src/core/bot-files.ts). */
  hash: string;
}

export class BotLoadError extends PatchbayError {
  override name = 'BotLoadError';
  constructor(
    message: string,
    readonly file: string | undefined,
    cause?: unknown,
  ) {
    super('bot_load_failed', message, { retryable: false, cause });
  }
}

const cache = new Map<string, Promise<LoadedBot>>();

/**
 * The bot `name`, as it runs under the service's pipeline (`s2s`: VOICE_PIPELINE's
 * speech-to-speech vendor, WorkerInit.realtime.pipeline; a bot offering both runs that one).
 */
export function loadBot(botsDir: string, name: string, s2s?: S2sProviderName): Promise<LoadedBot> {
  const key = `${botsDir}\0${name}\0${s2s ?? ''}`;
  let p = cache.get(key);
  if (!p) {
    p = doLoad(botsDir, name).then((l) => ({ ...l, bot: botForPipeline(l.bot, s2s) }));
    cache.set(key, p);
  }
  return p;
}

async function doLoad(botsDir: string, name: string): Promise<LoadedBot> {
  const builtinFile = BUILTIN_BOTS[name];
  if (builtinFile) {
    const builtin = new URL(`./${builtinFile}.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);
    const builtinBot = defaultExport(await import(builtin.href));
    if (!isBot(builtinBot)) throw new BotLoadError(`the built-in ${name} bot is not a bot`, builtin.pathname);
    return { bot: builtinBot, file: builtin.pathname, version: 'builtin', hash: 'builtin' };
  }
  const file = resolveBotFile(botsDir, name);
  if (!file) throw new BotLoadError(`bot "${name}" not found in ${botsDir}`, undefined);
  let mod: unknown;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    throw new BotLoadError(`bot "${name}" failed to load from ${file}: ${describeLoadError(err, file)}`, file, err);
  }
  const bot = defaultExport(mod);
  if (!isBot(bot)) {
    throw new BotLoadError(`bot "${name}" (${file}) must \`export default defineBot({...})\``, file);
  }
  const hash = botSourceHash(botsDir, file);
  return { bot, file, version: bot.version ?? hash, hash };
}

/** A module namespace's `default` export (undefined when it has none). */
function defaultExport(mod: unknown): unknown {
  return typeof mod === 'object' && mod !== null && 'default' in mod ? mod.default : undefined;
}

/** One line, with the position in the bot's file when the runtime knows it (syntax errors). */
function describeLoadError(err: unknown, file: string): string {
  const message = errorMessage(err)
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  // tsx's import lexer reports JavaScript syntax errors at 1:1: ask Node where the error really is.
  if (/\.[cm]?js$/.test(file) && /^Parse error .*:1:1$/.test(message)) return syntaxCheck(file) ?? message;
  if (message.includes(path.basename(file))) return message;
  // Node's own SyntaxError puts "file:line" as the first line of the stack, not in the message.
  const first = (err instanceof Error ? err.stack : undefined)?.split('\n')[0] ?? '';
  const at = first.includes(path.basename(file)) ? first.trim() : botFrame(err, file);
  return at ? `${message} (${at})` : message;
}

/** `node --check`: "SyntaxError: missing ) after argument list (/bots/x.js:8)", or undefined. */
function syntaxCheck(file: string): string | undefined {
  try {
    const r = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 5_000 });
    if (r.status === 0) return undefined;
    const lines = (r.stderr ?? '').split('\n');
    const where = lines.find((l) => l.startsWith(file));
    const what = lines.find((l) => /^\w*Error: /.test(l));
    return what && where ? `${what.trim()} (${where.trim()})` : undefined;
  } catch {
    return undefined;
  }
}

/** "file:line:col" of the first stack frame in the bot's file, for error logs. */
export function botFrame(err: unknown, file: string): string | undefined {
  const stack = err instanceof Error ? err.stack : undefined;
  if (typeof stack !== 'string') return undefined;
  const base = path.basename(file);
  for (const line of stack.split('\n')) {
    const m = /\(?((?:file:\/\/)?[^\s()]+):(\d+):(\d+)\)?\s*$/.exec(line.trim());
    if (m && m[1] && m[1].includes(base)) return `${m[1].replace(/^file:\/\//, '')}:${m[2]}:${m[3]}`;
  }
  return undefined;
}
