/**
 * Choosing a speech-to-speech model for a bot (`realtime:` in defineBot; issue 23 item 4):
 *
 *   export default defineBot({
 *     name: 'concierge',
 *     realtime: openaiRealtime({
 *       model: 'gpt-realtime',
 *       voice: 'marin',
 *       instructions: 'You answer calls for Ada's bakery…',
 *       greeting: 'Greet the caller and ask how you can help.',
 *       transferTo: { phoneNumber: '+15550001111' },
 *       tools: [{ name: 'opening_hours', description: '…', parameters: {…}, run: () => '9 to 6' }],
 *     }),
 *   });
 *
 * The model hears the caller's audio and speaks to them itself (src/sdk/realtime-run.ts). Keys come
 * from the service's environment (OPENAI_API_KEY, GEMINI_API_KEY), never from the bot.
 * `C` is the bot's `Call` (kept generic here so this file needs nothing of index.ts).
 */
import type { S2sProviderName } from '../voice/s2s.js';

/** A function the model may call; `run`'s result (a string, or anything JSON) is what the model is told. */
export interface RealtimeTool<C> {
  name: string;
  description?: string;
  /** JSON Schema of the arguments (default: no arguments). */
  parameters?: Record<string, unknown>;
  run(args: Record<string, unknown>, call: C): unknown;
}

export type RealtimeTarget = { sipUri: string } | { phoneNumber: string };

/** The stages of one speech-to-speech turn, for a turn timer (`onStage`). */
export type RealtimeStage = 'speechEnd' | 'modelFirstAudio' | 'firstFrameSent';

export interface RealtimeOptions<C> {
  /** The vendor's model (default `gpt-realtime` for OpenAI, `gemini-live-2.5-flash-preview` for Gemini). */
  model?: string;
  /** The model's voice (OpenAI `alloy`, `marin`…; Gemini `Puck`, `Kore`…). */
  voice?: string;
  /** The system prompt. */
  instructions?: string;
  tools?: Array<RealtimeTool<C>>;
  /** The model speaks first: `true`, or the instructions for its first answer. Default: it waits for the caller. */
  greeting?: boolean | string;
  /**
   * Where the built-in `transfer` tool sends the caller (the model calls it to hand over to a
   * person); also where the caller goes when the vendor fails. Without it, no `transfer` tool.
   */
  transferTo?: RealtimeTarget | ((call: C) => RealtimeTarget | undefined);
  /** Said (with the service's TTS) when the vendor fails; default: an apology. */
  apology?: string;
  /** Caller silence that ends their turn for the model's VAD (default 500 ms). */
  silenceMs?: number;
  /**
   * Each turn's stages as they happen (epoch ms): the model's VAD heard the caller stop
   * (`speechEnd`), the model's first audio of its answer arrived (`modelFirstAudio`), its first
   * frame went to the caller (`firstFrameSent`). For a turn timer (issue 23 item 5).
   */
  onStage?: (stage: RealtimeStage, atMs: number) => void;
}

export interface RealtimeChoice<C> extends RealtimeOptions<C> {
  provider: S2sProviderName;
}

export const DEFAULT_REALTIME_MODELS: Record<S2sProviderName, string> = {
  openai: 'gpt-realtime',
  gemini: 'gemini-live-2.5-flash-preview',
};

/** OpenAI's Realtime API through the official `openai` SDK (OPENAI_API_KEY, OPENAI_REALTIME_BASE_URL). */
export function openaiRealtime<C>(opts: RealtimeOptions<C> = {}): RealtimeChoice<C> {
  return { provider: 'openai', ...opts };
}

/** Gemini Live through `@google/genai` (GEMINI_API_KEY or GOOGLE_API_KEY, GEMINI_BASE_URL). */
export function geminiLive<C>(opts: RealtimeOptions<C> = {}): RealtimeChoice<C> {
  return { provider: 'gemini', ...opts };
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Checks a bot's `realtime` option; returns an error message or undefined. */
export function checkRealtimeChoice(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || !('provider' in v) || (v.provider !== 'openai' && v.provider !== 'gemini'))
    return '`realtime` must be openaiRealtime({...}) or geminiLive({...})';
  const tools: unknown = (v as { tools?: unknown }).tools;
  if (tools === undefined) return undefined;
  if (!Array.isArray(tools)) return '`realtime.tools` must be an array';
  for (const t of tools as unknown[]) {
    const tool = t as { name?: unknown; run?: unknown } | null;
    if (!tool || typeof tool.name !== 'string' || !NAME.test(tool.name))
      return '`realtime.tools[].name` must be 1-64 of letters, digits, _ or -';
    if (tool.name === 'transfer' || tool.name === 'hangup') return `\`realtime.tools\`: ${tool.name} is built in`;
    if (typeof tool.run !== 'function') return `\`realtime.tools\`: ${tool.name} needs a run(args, call) function`;
  }
  return undefined;
}
