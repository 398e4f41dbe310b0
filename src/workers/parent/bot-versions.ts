/**
 * The version of each bot as this replica knows it, for calls' records (docs/bots.md, "Versions").
 * A bot's version is its declared `version`, else the hash of its files (src/core/bot-files.ts).
 * Only a worker can read a declared version (it loads the bot's code); the parent hashes the files
 * itself. So: what a worker last reported for the bot, as long as the bot's files still hash to
 * what that worker loaded; otherwise (no worker loaded it yet, or the files changed since) the hash.
 * The worker that runs a call reports the version it really loaded (`bot-version`), which wins.
 */
import { statSync } from 'node:fs';
import { CALLBACK_OFFER_BOT } from '../../core/callback.js';
import { APOLOGY_BOT, botSourceFiles, botSourceHash, resolveBotFile } from '../../core/bot-files.js';
import type { BotVersionInfo } from '../protocol.js';

interface Hashed {
  hash: string;
  /** mtime and size of each file the hash covers: unchanged → the same hash, without reading them. */
  stamps: Array<{ file: string; stamp: string }>;
}

const stampOf = (file: string): string => {
  try {
    const st = statSync(file);
    return `${st.mtimeMs}:${st.size}`;
  } catch {
    return 'missing';
  }
};

export class BotVersions {
  private readonly hashed = new Map<string, Hashed>();
  private readonly reported = new Map<string, BotVersionInfo>();

  constructor(private botsDir: string) {}

  /** A reload moved the bots (to its snapshot, bot-snapshot.ts): hash them there from now on. */
  setDir(botsDir: string): void {
    this.botsDir = botsDir;
    this.hashed.clear();
  }

  /** Every bot a worker reported, with its version (for /status). */
  known(): Record<string, string> {
    return Object.fromEntries([...this.reported.keys()].sort().map((b) => [b, this.of(b) ?? 'missing']));
  }

  /** What a worker loaded (its `ready` for preloaded bots, `bot-version` for a call's). */
  learn(bot: string, info: BotVersionInfo): void {
    this.reported.set(bot, info);
  }

  /** The hash of the bot's files now; undefined when there is no such bot. */
  hashOf(bot: string): string | undefined {
    if (bot === APOLOGY_BOT || bot === CALLBACK_OFFER_BOT) return 'builtin';
    const known = this.hashed.get(bot);
    if (known && known.stamps.every((s) => stampOf(s.file) === s.stamp)) return known.hash;
    const file = resolveBotFile(this.botsDir, bot);
    if (!file) return undefined;
    const stamps = botSourceFiles(this.botsDir, file).map((f) => ({ file: f, stamp: stampOf(f) }));
    const hash = botSourceHash(this.botsDir, file);
    this.hashed.set(bot, { hash, stamps });
    return hash;
  }

  /** The version a new call of `bot` would run; undefined when the bot is unknown. */
  of(bot: string): string | undefined {
    const hash = this.hashOf(bot);
    if (hash === undefined) return undefined;
    const r = this.reported.get(bot);
    return r && r.hash === hash ? r.version : hash;
  }
}
