/** The domain's pinless dial-in configuration (`properties.pinless_dialin` and `/domain-dialin-config`: one store). */
import { randomUUID } from 'node:crypto';
import { ApiError, badRequest } from './errors.js';
import { isObj, randomDigits, sipBase } from './model.js';
import type { PinlessDialinEntry } from './types.js';

export type StoredPinless = PinlessDialinEntry & { id: string };

const KNOWN = new Set([
  'phone_number',
  'sip_uri',
  'name_prefix',
  'room_creation_api',
  'hmac',
  'hold_music_url',
  'timeout_config',
  'ivr_greeting',
]);

/** A domain-dialin-config body: `{type?, config: {...}}` or flat `{type?, phone_number, …}` (both appear in Daily's docs). */
function dialinConfigBody(body: unknown): unknown {
  if (!isObj(body)) return body;
  if (body.type !== undefined && body.type !== 'pinless_dialin') throw badRequest('the emulator supports type pinless_dialin only');
  if (isObj(body.config)) return body.config;
  const { type: _type, ...flat } = body;
  return flat;
}

const STRING_KEYS = ['phone_number', 'sip_uri', 'name_prefix', 'hmac', 'hold_music_url'] as const;

const strip = ({ id: _id, ...e }: StoredPinless): PinlessDialinEntry => e;

export class PinlessStore {
  private entries: StoredPinless[] = [];

  /** `sipHost`: the host of generated interconnect URIs (`<domain>.sip.daily.co`). */
  constructor(private readonly sipHost: string) {}

  /** Validates and normalises entries (fills `sip_uri`). Throws ApiError 400. */
  normalise(entries: unknown, keepIds: Array<string | undefined> = []): StoredPinless[] {
    if (!Array.isArray(entries)) throw badRequest('pinless_dialin must be an array');
    const seen = new Set<string>();
    return entries.map((e, i) => {
      const where = `pinless_dialin[${i}]`;
      if (!isObj(e)) throw badRequest(`${where} must be an object`);
      for (const k of Object.keys(e)) if (!KNOWN.has(k)) throw badRequest(`${where}: unknown property '${k}'`);
      const api = e.room_creation_api;
      if (typeof api !== 'string' || !/^https?:\/\//.test(api)) throw badRequest(`${where}.room_creation_api must be an http(s) URL`);
      const str: Partial<Record<(typeof STRING_KEYS)[number], string>> = {};
      for (const k of STRING_KEYS) {
        const v = e[k];
        if (v === undefined) continue;
        if (typeof v !== 'string') throw badRequest(`${where}.${k} must be a string`);
        str[k] = v;
      }
      if (str.phone_number !== undefined && !/^\+[1-9]\d{4,15}$/.test(str.phone_number)) {
        throw badRequest(`${where}.phone_number must be E.164 (+ and digits)`);
      }
      if (str.hmac !== undefined && !/^[A-Za-z0-9+/]+={0,2}$/.test(str.hmac)) throw badRequest(`${where}.hmac must be base64`);
      const tc = e.timeout_config;
      if (tc !== undefined && !(isObj(tc) && (tc.message === undefined || typeof tc.message === 'string'))) {
        throw badRequest(`${where}.timeout_config must be {message}`);
      }
      const phone = str.phone_number;
      const sipUri = str.sip_uri ?? `sip:${randomDigits(10)}@${this.sipHost}`;
      for (const key of [phone, sipBase(sipUri)]) {
        if (key === undefined) continue;
        if (seen.has(key)) throw badRequest(`${where}: ${key} is already configured`);
        seen.add(key);
      }
      return { ...e, room_creation_api: api, sip_uri: sipUri, id: keepIds[i] ?? randomUUID() };
    });
  }

  /** Replaces the whole configuration (like Daily's `POST /` with `pinless_dialin`). */
  set(entries: unknown): void {
    this.entries = this.normalise(entries);
  }

  list(): StoredPinless[] {
    return this.entries.map((e) => ({ ...e }));
  }

  /** The entries without their ids, as the domain object shows them. */
  plain(): PinlessDialinEntry[] {
    return this.entries.map(strip);
  }

  /** The entry a call to `to` (a number or a SIP URI) reaches. */
  route(to: string): StoredPinless | undefined {
    const target = to.startsWith('sip:') || to.startsWith('sips:') ? sipBase(to) : to;
    return this.entries.find((e) => e.phone_number === target || (e.sip_uri !== undefined && sipBase(e.sip_uri) === target));
  }

  configJson(e: StoredPinless): Record<string, unknown> {
    const { id, ...config } = e;
    return { id, type: 'pinless_dialin', config };
  }

  get(id: string): Record<string, unknown> {
    const e = this.entries.find((p) => p.id === id);
    if (!e) throw new ApiError(404, 'not-found', `dialin config ${id} not found`);
    return this.configJson(e);
  }

  /** The new entry (`configJson` shows it). */
  create(body: unknown): StoredPinless {
    const [entry] = this.normalise([dialinConfigBody(body)]);
    const { id: newId, ...fresh } = entry!;
    this.entries = this.normalise([...this.plain(), fresh], [...this.entries.map((p) => p.id), newId]);
    return this.entries[this.entries.length - 1]!;
  }

  /** The updated entry (`configJson` shows it). */
  update(id: string, body: unknown): StoredPinless {
    const i = this.entries.findIndex((p) => p.id === id);
    if (i < 0) throw new ApiError(404, 'not-found', `dialin config ${id} not found`);
    const cfg = dialinConfigBody(body);
    if (!isObj(cfg)) throw badRequest('body must be an object');
    const next = [...this.entries];
    next[i] = { ...strip(this.entries[i]!), ...cfg, id };
    this.entries = this.normalise(
      next.map(strip),
      next.map((p) => p.id),
    );
    return this.entries[i]!;
  }

  delete(id: string): void {
    const i = this.entries.findIndex((p) => p.id === id);
    if (i < 0) throw new ApiError(404, 'not-found', `dialin config ${id} not found`);
    this.entries.splice(i, 1);
  }
}
