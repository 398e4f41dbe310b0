/** Picks the bot for a call. Extended by bots/routes (see the bot SDK). */
import type { PinlessCall } from '../daily/types.js';

export type Route = (call: PinlessCall) => string;

export function defaultRouter(defaultBot: string): Route {
  return () => defaultBot;
}
