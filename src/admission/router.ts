/**
 * Picks the bot for a call: the routing file (`bots/routes.json` or ROUTES_FILE), validated at
 * start-up, or a plain default.
 *
 *   {
 *     "default": "greeter",
 *     "routes": [
 *       { "to": "+15550001002", "bot": "ivr-menu", "config": { "salesUri": "sip:sales@pbx.example.com" } },
 *       { "to": ["sip:pin@example.sip.daily.co", "+15550001003"], "bot": "pin-check" },
 *       { "sipHeaders": { "x-bot": "voice-assistant" }, "bot": "voice-assistant" },
 *       { "botFromHeader": "x-bot", "allow": ["greeter", "pin-check"] }
 *     ],
 *     "bots": { "ivr-menu": { "supportUri": "sip:support@pbx.example.com" } }
 *   }
 *
 * The first route whose conditions all match wins (`to` and `sipHeaders` together are an AND).
 * `botFromHeader` takes the bot name from a SIP header, only among `allow`. A bot route (and the
 * default, top-level `canary`) may send `canary.percent` % of its callers to `canary.bot`, sticky
 * per caller number (`canaryPlace`). Per-bot settings in
 * `bots` are merged with a route's `config` (the route wins) and reach the bot as `call.config`.
 * Every bot named anywhere must exist in the bots directory, or start-up fails naming it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import type { PinlessCall } from '../daily/types.js';
import { PatchbayError, errorMessage } from '../core/errors.js';
import { resolveBotFile } from '../core/bot-files.js';

export interface RouteResult {
  bot: string;
  /** The route has a canary: which side this call is on (its `bot` is the canary's on `canary`). */
  side?: 'stable' | 'canary';
  /** Settings for this bot (`call.config`). */
  config?: Record<string, unknown>;
}

export type Route = (call: PinlessCall) => string | RouteResult;

/** Normalises what a route returns. */
export function routeResult(r: string | RouteResult): RouteResult {
  return typeof r === 'string' ? { bot: r } : r;
}

export function defaultRouter(defaultBot: string): Route {
  return () => defaultBot;
}

const BotName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' });
const Settings = Type.Record(Type.String(), Type.Unknown());
const Target = Type.String({ minLength: 1, maxLength: 256 });

/** A share of a route's calls (sticky per caller number) goes to another bot (docs/bots.md, "Canary"). */
const Canary = Type.Object({ bot: BotName, percent: Type.Number({ minimum: 0, maximum: 100 }) }, { additionalProperties: false });

const MatchRoute = Type.Object(
  {
    /** Called number(s) or SIP URI(s) (the webhook's `To`). */
    to: Type.Optional(Type.Union([Target, Type.Array(Target, { minItems: 1 })])),
    /** SIP headers that must all be present with these values (names case-insensitive). */
    sipHeaders: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String())),
    bot: BotName,
    config: Type.Optional(Settings),
    canary: Type.Optional(Canary),
  },
  { additionalProperties: false },
);
const HeaderRoute = Type.Object(
  {
    /** The value of this SIP header names the bot … */
    botFromHeader: Type.String({ minLength: 1 }),
    /** … if it is one of these. */
    allow: Type.Array(BotName, { minItems: 1 }),
    to: Type.Optional(Type.Union([Target, Type.Array(Target, { minItems: 1 })])),
    config: Type.Optional(Settings),
  },
  { additionalProperties: false },
);
export const RoutesSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    default: Type.Optional(BotName),
    /** The default bot's canary. */
    canary: Type.Optional(Canary),
    routes: Type.Optional(Type.Array(Type.Union([MatchRoute, HeaderRoute]))),
    bots: Type.Optional(Type.Record(BotName, Settings)),
  },
  { additionalProperties: false },
);
export type RoutesSpec = Static<typeof RoutesSchema>;

export class RoutesError extends PatchbayError {
  override name = 'RoutesError';
  constructor(message: string) {
    super('routes_invalid', message, { retryable: false });
  }
}

/** Validates a parsed routing file; `source` names it in errors. */
export function parseRoutes(value: unknown, source: string): RoutesSpec {
  if (Value.Check(RoutesSchema, value)) {
    const spec = value;
    for (const [i, r] of (spec.routes ?? []).entries()) {
      if ('bot' in r && r.to === undefined && r.sipHeaders === undefined) {
        throw new RoutesError(
          `${source}: routes[${i}] (bot "${r.bot}") has no condition: give "to" and/or "sipHeaders" (use "default" for a catch-all)`,
        );
      }
    }
    return spec;
  }
  // Report the most specific error: the deepest path.
  const errors = [...Value.Errors(RoutesSchema, value)];
  const worst = errors.sort((a, b) => b.instancePath.length - a.instancePath.length)[0];
  const where = worst?.instancePath ? worst.instancePath.replace(/^\//, '').replace(/\//g, '.') : '(top level)';
  throw new RoutesError(`${source}: invalid routing file at ${where}: ${worst?.message ?? 'does not match the schema'}`);
}

/** Every bot name the spec refers to (default first). */
export function routedBots(spec: RoutesSpec, fallbackDefault: string): string[] {
  const names = new Set<string>([spec.default ?? fallbackDefault]);
  if (spec.canary) names.add(spec.canary.bot);
  for (const r of spec.routes ?? []) {
    if ('bot' in r) {
      names.add(r.bot);
      if (r.canary) names.add(r.canary.bot);
    } else for (const a of r.allow) names.add(a);
  }
  for (const b of Object.keys(spec.bots ?? {})) names.add(b);
  return [...names];
}

/** "+1 (555) 000-1000" → "+15550001000"; "sip:Bot@Host;transport=udp" → "bot@host". */
export function normalizeTarget(s: string): string {
  let v = s.trim().replace(/^<|>$/g, '');
  if (/^sips?:/i.test(v) || v.includes('@')) {
    v = v
      .replace(/^sips?:/i, '')
      .split(';')[0]!
      .split('?')[0]!;
    return v.toLowerCase();
  }
  v = v.replace(/^tel:/i, '');
  return v.replace(/[\s().-]/g, '');
}

function headerValue(headers: Record<string, string>, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === want) return v;
  return undefined;
}

export function createRouter(spec: RoutesSpec, fallbackDefault: string): Route {
  const def = spec.default ?? fallbackDefault;
  const settingsOf = (stable: string, routeConfig?: Record<string, unknown>, canary?: CanarySpec, from = ''): RouteResult => {
    const side = canary ? (inCanary(from, canary) ? 'canary' : 'stable') : undefined;
    const bot = side === 'canary' ? canary!.bot : stable;
    const config = { ...(spec.bots?.[bot] ?? {}), ...(routeConfig ?? {}) };
    return { bot, ...(Object.keys(config).length > 0 ? { config } : {}), ...(side ? { side } : {}) };
  };
  const routes = (spec.routes ?? []).map((r) => {
    const to = r.to === undefined ? undefined : new Set((Array.isArray(r.to) ? r.to : [r.to]).map(normalizeTarget));
    return { r, to };
  });
  return (call) => {
    const calledTo = normalizeTarget(call.to);
    for (const { r, to } of routes) {
      if (to && !to.has(calledTo)) continue;
      if ('bot' in r) {
        const hs = Object.entries(r.sipHeaders ?? {});
        if (hs.every(([k, v]) => headerValue(call.sipHeaders, k) === v)) return settingsOf(r.bot, r.config, r.canary, call.from);
      } else {
        const named = headerValue(call.sipHeaders, r.botFromHeader)?.trim();
        if (named && r.allow.includes(named)) return settingsOf(named, r.config);
      }
    }
    return settingsOf(def, undefined, spec.canary, call.from);
  };
}

type CanarySpec = Static<typeof Canary>;

/**
 * The caller's place in [0, 100): SHA-256 of the canary bot's name and the caller's normalised
 * number, its first 32 bits scaled. The same number lands in the same place on every replica and
 * after every restart (no shared state); another canary bot splits the callers differently.
 */
export function canaryPlace(from: string, canaryBot: string): number {
  const h = createHash('sha256').update(canaryBot).update('\0').update(normalizeTarget(from)).digest();
  return (h.readUInt32BE(0) / 2 ** 32) * 100;
}

function inCanary(from: string, canary: CanarySpec): boolean {
  return canaryPlace(from, canary.bot) < canary.percent;
}

export interface LoadedRoutes {
  route: Route;
  /** Every bot the routes can pick (worth preloading in idle workers). */
  bots: string[];
  /** The routing file used, if any. */
  file: string | undefined;
}

/**
 * The router for a bots directory: `routesFile` (must exist) or `<botsDir>/routes.json` when it
 * exists, else the default bot for every call. Throws a RoutesError naming the file and the
 * problem, or the bot that does not exist.
 */
export function loadRoutes(opts: { botsDir: string; defaultBot: string; routesFile?: string | undefined }): LoadedRoutes {
  let file = opts.routesFile;
  if (file !== undefined && !existsSync(file)) throw new RoutesError(`ROUTES_FILE ${file} does not exist`);
  if (file === undefined) {
    const candidate = path.join(opts.botsDir, 'routes.json');
    if (existsSync(candidate)) file = candidate;
  }
  let spec: RoutesSpec = {};
  if (file !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new RoutesError(`${file}: not valid JSON: ${errorMessage(err)}`);
    }
    spec = parseRoutes(raw, file);
  }
  const bots = routedBots(spec, opts.defaultBot);
  for (const name of bots) {
    if (!resolveBotFile(opts.botsDir, name)) {
      throw new RoutesError(
        `${file ? `${file}: ` : ''}unknown bot "${name}": no ${name}.ts / ${name}.js (or ${name}/index.ts) in ${opts.botsDir}`,
      );
    }
  }
  return { route: createRouter(spec, opts.defaultBot), bots, file };
}
