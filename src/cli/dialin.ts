/**
 * Pinless dial-in entries of a Daily domain: read, merge, diff, write — never dropping the entries
 * this command was not asked to change.
 *
 * Two stores hold the same entries on Daily:
 *  - `/domain-dialin-config` (one object per entry, with an `id`): changes touch one entry;
 *  - the legacy `pinless_dialin` domain property (`POST /` with `properties.pinless_dialin`), whose
 *    array REPLACES the whole configuration: we read it, merge, write it back whole, and re-read
 *    to check that nothing else was lost.
 */
import type { DailyRestClient } from '../daily/rest.js';
import type { PinlessDialinEntry } from '../daily/types.js';

/** One pinless dial-in entry, as Daily stores it. */
export type PinlessEntry = PinlessDialinEntry;

/** An entry as stored: its `/domain-dialin-config` id when the store has one. */
export interface StoredEntry {
  id?: string;
  entry: PinlessEntry;
}

export type Store = 'config' | 'legacy';

/** The key that identifies an entry: its phone number, else its SIP URI. */
export function entryKey(e: PinlessEntry): string {
  return e.phone_number ?? e.sip_uri ?? '(new SIP interconnect)';
}

export function matches(e: PinlessEntry, target: string): boolean {
  const t = target.trim().toLowerCase();
  const base = (s: string) => s.split('?')[0]!.trim().toLowerCase();
  return e.phone_number === target.trim() || (e.sip_uri !== undefined && base(e.sip_uri) === base(t));
}

export async function readEntries(daily: DailyRestClient, store: Store): Promise<StoredEntry[]> {
  if (store === 'legacy') {
    const domain = await daily.getDomain({ policy: 'admin' });
    return (domain?.config?.pinless_dialin ?? []).map((entry) => ({ entry }));
  }
  const out: StoredEntry[] = [];
  for (const d of await daily.listDialinConfigs({ policy: 'admin' })) {
    if (d.type !== undefined && d.type !== 'pinless_dialin') continue;
    out.push({ id: d.id, entry: { ...(d.config ?? {}) } });
  }
  return out;
}

/** Hides secrets for display. */
export function redactEntry(e: PinlessEntry): PinlessEntry {
  return e.hmac === undefined ? { ...e } : { ...e, hmac: `••••${e.hmac.slice(-4)}` };
}

const show = (v: unknown): string => (v === undefined ? '(unset)' : typeof v === 'string' ? v : JSON.stringify(v));

/** Human diff of two entry lists, keyed by `entryKey`; secrets shown as masked. */
export function diffEntries(before: PinlessEntry[], after: PinlessEntry[]): string[] {
  const lines: string[] = [];
  const b = new Map(before.map((e) => [entryKey(e), e]));
  const a = new Map(after.map((e) => [entryKey(e), e]));
  for (const [k, e] of b) {
    if (!a.has(k)) lines.push(`- ${k}  (${show(e.room_creation_api)})`);
  }
  for (const [k, e] of a) {
    const old = b.get(k);
    if (!old) {
      lines.push(`+ ${k}`);
      for (const [f, v] of Object.entries(redactEntry(e))) lines.push(`    ${f}: ${show(v)}`);
      continue;
    }
    const fields = new Set([...Object.keys(old), ...Object.keys(e)]);
    const changed: string[] = [];
    for (const f of fields) {
      if (JSON.stringify(old[f]) === JSON.stringify(e[f])) continue;
      if (f === 'hmac')
        changed.push(`    hmac: ${old.hmac === undefined ? '(unset)' : 'set'} → ${e.hmac === undefined ? '(unset)' : 'new secret'}`);
      else changed.push(`    ${f}: ${show(old[f])} → ${show(e[f])}`);
    }
    if (changed.length > 0) lines.push(`~ ${k}`, ...changed);
  }
  const kept = [...a.keys()].filter((k) => b.has(k) && !lines.includes(`~ ${k}`)).length;
  if (lines.length === 0) lines.push('(no change)');
  lines.push(`= ${kept} other entr${kept === 1 ? 'y' : 'ies'} unchanged`);
  return lines;
}

export interface SetOptions {
  /** Phone number (E.164) or SIP URI of an existing entry; undefined with `newSip` (new SIP interconnect). */
  target?: string;
  newSip?: boolean;
  fields: Partial<PinlessEntry>;
}

/** The new entry list after `set` (pure: no I/O). Throws on a bad request. */
export function planSet(current: PinlessEntry[], o: SetOptions): { next: PinlessEntry[]; index: number; created: boolean } {
  const next = current.map((e) => ({ ...e }));
  let index = o.newSip || o.target === undefined ? -1 : next.findIndex((e) => matches(e, o.target!));
  const created = index < 0;
  if (created) {
    if (!o.newSip) {
      if (!o.target || !/^\+[1-9]\d{4,15}$/.test(o.target)) {
        throw new Error(
          `no entry for ${o.target ?? '(none)'}; to add one give a phone number in E.164 (+15551234567), or --sip-interconnect for a new SIP URI`,
        );
      }
    }
    if (!o.fields.room_creation_api) throw new Error('a new entry needs --room-creation-api');
    next.push({ ...(o.newSip ? {} : { phone_number: o.target! }), ...o.fields });
    index = next.length - 1;
  } else {
    next[index] = { ...next[index]!, ...o.fields };
  }
  return { next, index, created };
}

export function planRemove(current: PinlessEntry[], target: string): PinlessEntry[] {
  const next = current.filter((e) => !matches(e, target));
  if (next.length === current.length) throw new Error(`no pinless dial-in entry for ${target}`);
  return next;
}

/** Writes the legacy property, then re-reads it and checks every expected entry survived. */
export async function writeLegacy(daily: DailyRestClient, next: PinlessEntry[]): Promise<PinlessEntry[]> {
  await daily.setDomainProperties({ pinless_dialin: next });
  const after = (await readEntries(daily, 'legacy')).map((s) => s.entry);
  const missing = next.filter((e) => (e.phone_number ?? e.sip_uri) !== undefined && !after.some((x) => entryKey(x) === entryKey(e)));
  if (missing.length > 0) throw new Error(`after writing, these entries are missing: ${missing.map(entryKey).join(', ')}`);
  return after;
}
