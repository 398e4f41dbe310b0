/** A bot's file, name and directory, from its module or path. */
import path from 'node:path';
import { botFileOf, isBot, type Bot } from '../sdk/index.js';

/** Absolute file of a bot given as a Bot (from defineBot) or a path. */
export function resolveBotPath(bot: Bot | string): string {
  if (typeof bot === 'string') return path.resolve(bot);
  if (!isBot(bot)) throw new TypeError('runBotTest: pass the default export of a bot module (defineBot) or its file path');
  const file = botFileOf(bot);
  if (!file) throw new TypeError(`runBotTest: cannot tell which file defines bot "${bot.name}"; pass its path instead`);
  return file;
}

export function botNameOf(file: string): string {
  const base = path.basename(file).replace(/\.[cm]?[jt]s$/, '');
  return base === 'index' ? path.basename(path.dirname(file)) : base;
}

export function botDirOf(file: string): string {
  const dir = path.dirname(file);
  return path.basename(file).startsWith('index.') ? path.dirname(dir) : dir;
}
