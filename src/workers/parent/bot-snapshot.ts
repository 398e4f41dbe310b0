/**
 * A frozen copy of the bots directory for one reload (docs/operations.md, "Reload"). Workers of a
 * reloaded generation load their bots from it, so an edit to BOTS_DIR after a reload (a broken
 * file, half a deploy) reaches no worker until the next reload accepts it.
 *
 * The copy is a sibling of the bots directory, `.<name>@<hash>` (`bots/` → `.bots@3f2a…`): at the
 * same depth, so a bot's relative imports out of its directory (`../../src/sdk/index.js`) and its
 * package imports (`patchbay/sdk`, node_modules up the tree) resolve as they do from BOTS_DIR.
 * `<hash>`: SHA-256 over every file's relative path and content (the same tree → the same copy).
 * Dot entries and node_modules are not copied. Older copies are pruned, the newest `keep` kept.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { PatchbayError, errorMessage } from '../../core/errors.js';

/** Entries never copied (nor hashed): hidden files and folders, installed packages. */
const skipped = (name: string) => name.startsWith('.') || name === 'node_modules';

/** Every file under `dir` (relative paths, sorted), skipping what is not copied. */
function filesOf(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    if (skipped(e.name)) continue;
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...filesOf(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}

/** 16 hex digits over the tree's paths and contents. */
export function treeHash(dir: string): string {
  const h = createHash('sha256');
  for (const f of filesOf(dir))
    h.update(f)
      .update('\0')
      .update(readFileSync(path.join(dir, f)))
      .update('\0');
  return h.digest('hex').slice(0, 16);
}

const prefixOf = (liveDir: string) => `.${path.basename(path.resolve(liveDir))}@`;

/** Copies `liveDir` to its sibling snapshot (reused when the tree is unchanged); returns its path. */
export function snapshotBots(liveDir: string): string {
  const live = path.resolve(liveDir);
  let hash: string;
  try {
    hash = treeHash(live);
  } catch (err) {
    throw new PatchbayError('bots_unreadable', `cannot read the bots directory ${live}: ${errorMessage(err)}`, { retryable: false });
  }
  const target = path.join(path.dirname(live), `${prefixOf(live)}${hash}`);
  if (existsSync(target)) return target;
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  try {
    cpSync(live, tmp, { recursive: true, filter: (src) => src === live || !skipped(path.basename(src)) });
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(target)) return target; // another process made the same copy first
    throw new PatchbayError('bots_snapshot_failed', `cannot copy ${live} for the reload: ${errorMessage(err)}`, { retryable: false });
  }
  return target;
}

/** Removes the snapshots of `liveDir` but the newest `keep` and those in `inUse`. */
export function pruneSnapshots(liveDir: string, inUse: string[], keep = 3): void {
  const live = path.resolve(liveDir);
  const parent = path.dirname(live);
  const prefix = prefixOf(live);
  const snaps = readdirSync(parent)
    .filter((n) => n.startsWith(prefix) && !n.includes('.tmp-'))
    .map((n) => path.join(parent, n))
    .map((p) => ({ p, t: statSync(p).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  const keepSet = new Set([...inUse.map((p) => path.resolve(p)), ...snaps.slice(0, keep).map((s) => s.p)]);
  for (const s of snaps) if (!keepSet.has(s.p)) rmSync(s.p, { recursive: true, force: true });
}
