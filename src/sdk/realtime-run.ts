/**
 * A speech-to-speech bot's call (`realtime:` in defineBot): the caller's frames go to the model
 * (through its S2sSession, src/voice/s2s.ts), the model's audio is played to the caller as it
 * streams (realtime-playout.ts), and:
 *
 *  - barge-in comes from the model's server-side VAD: at `speech-started` the playing stops at once
 *    and the model's item is truncated at what the caller heard (`truncate(itemId, playedMs)`);
 *  - the model's tool calls run here (the bot's tools, and the built-in `hangup` and `transfer`,
 *    which wait for the model's last words to be played); their results go back to the model;
 *  - keys the caller presses reach the model as text;
 *  - a vendor that fails (refused key, rate limit, disconnect) is never a silent caller: the bot's
 *    `onError` is told, an apology is said with the service's TTS, and the caller is transferred
 *    (`transferTo`) or the call ends as `bot_error` with the vendor's reason.
 */
import type { Logger } from 'pino';
import type { AudioOut } from '../daily/call-client.js';
import { asError, CallEndedError, errorMessage } from '../core/errors.js';
import { S2sError, type S2sEvent, type S2sProvider, type S2sSession, type S2sToolSpec } from '../voice/s2s.js';
import { heardText } from '../voice/tts-stream.js';
import type { Call } from './index.js';
import { DEFAULT_REALTIME_MODELS, type RealtimeChoice, type RealtimeStage, type RealtimeTarget } from './realtime.js';
import { Playout } from './realtime-playout.js';

export const DEFAULT_APOLOGY = 'Sorry, I am having technical trouble right now.';

export interface RealtimeDeps {
  call: Call;
  /** The caller's frames (the session's CallerAudio). */
  callerAudio: { on(fn: (pcm: Int16Array, sampleRate: number) => void): () => void; start(): Promise<void> };
  /** Plays audio to the caller (the worker's client: stamps first_audio, feeds the recording). */
  sendAudio(audio: AudioOut, signal: AbortSignal): Promise<void>;
  /** A bot event for the call's timeline (`say`: what the caller heard the model say; `turn`: barge-ins, stages). */
  report(kind: 'say' | 'turn', value: string): void;
  /** Loads the vendor's provider (its SDK). */
  provider(): Promise<S2sProvider>;
  /** The bot's `onError` hook. */
  onError(err: Error): void;
  /** Each turn's stages (epoch ms), for the worker's turn timer (issue 23 item 5); the bot's own `onStage` is called too. */
  onStage?: (stage: RealtimeStage, atMs: number) => void;
  logger: Logger;
}

const BUILT_IN_TOOLS = {
  hangup: {
    name: 'hangup',
    description: 'End the call, once the caller has nothing more to ask and you said goodbye.',
    parameters: { type: 'object', properties: { reason: { type: 'string' } }, required: [] },
  },
  transfer: {
    name: 'transfer',
    description: 'Hand the caller over to a person (a human agent). Tell them first that you are putting them through.',
    parameters: { type: 'object', properties: {}, required: [] },
  },
} satisfies Record<string, S2sToolSpec>;

/** Runs the conversation until the call ends; rejects with the vendor's S2sError when it failed and nobody took the caller. */
export async function runRealtime(deps: RealtimeDeps, choice: RealtimeChoice<Call>): Promise<void> {
  const { call } = deps;
  const failure = deferredError();
  const conv = new Conversation(deps, choice, (err) => failure.reject(err));
  try {
    const provider = await deps.provider();
    const tools: S2sToolSpec[] = (choice.tools ?? []).map((t) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      parameters: t.parameters ?? { type: 'object', properties: {} },
    }));
    tools.push(BUILT_IN_TOOLS.hangup);
    if (choice.transferTo) tools.push(BUILT_IN_TOOLS.transfer);
    conv.session = await provider.open({
      model: choice.model ?? DEFAULT_REALTIME_MODELS[choice.provider],
      ...(choice.voice ? { voice: choice.voice } : {}),
      ...(choice.instructions ? { instructions: choice.instructions } : {}),
      ...(choice.silenceMs ? { silenceMs: choice.silenceMs } : {}),
      tools,
      signal: call.signal,
      onEvent: (ev) => conv.onEvent(ev),
    });
    deps.report('turn', `speech-to-speech: ${choice.provider} connected${conv.session.id ? ` (${conv.session.id})` : ''}`);
    const off = deps.callerAudio.on((pcm, rate) => conv.session?.sendAudio(pcm, rate));
    call.signal.addEventListener('abort', off, { once: true });
    await deps.callerAudio.start();
    if (choice.greeting) conv.session.respond(typeof choice.greeting === 'string' ? choice.greeting : undefined);
    void forwardKeys(call, (text) => conv.session?.sendText(text));
    await Promise.race([failure.promise, new Promise<void>((r) => call.signal.addEventListener('abort', () => r(), { once: true }))]);
  } catch (err) {
    if (err instanceof CallEndedError || call.signal.aborted) return;
    await vendorFailed(deps, choice, conv, err instanceof S2sError ? err : new S2sError(errorMessage(err), { cause: err }));
  } finally {
    conv.session?.close();
  }
}

/** The vendor failed: onError, an apology, then a person (transferTo) or the end of the call with the reason. */
async function vendorFailed(deps: RealtimeDeps, choice: RealtimeChoice<Call>, conv: Conversation, err: S2sError): Promise<void> {
  const { call } = deps;
  conv.playout.stop();
  deps.logger.warn({ err: err.message, status: err.status, code: err.vendorCode }, 'speech-to-speech vendor failed');
  deps.report('turn', `speech-to-speech failed: ${err.message}`);
  deps.onError(err);
  await call.say(choice.apology ?? DEFAULT_APOLOGY).catch(() => undefined);
  if (call.signal.aborted) return;
  const to = targetOf(choice, call);
  if (to) {
    await call.transfer(to);
    return;
  }
  throw err;
}

/** Where `transfer` sends the caller on this call, if anywhere. */
function targetOf(choice: RealtimeChoice<Call>, call: Call): RealtimeTarget | undefined {
  const t = choice.transferTo;
  return typeof t === 'function' ? t(call) : t;
}

/** Keys the caller presses, as text for the model ("The caller pressed 1 2 #"). */
async function forwardKeys(call: Call, send: (text: string) => void): Promise<void> {
  while (!call.signal.aborted) {
    try {
      const keys = await call.collectDigits({ maxDigits: 32, firstDigitTimeoutMs: 3_600_000, interDigitTimeoutMs: 1_000 });
      if (keys) send(`The caller pressed the phone keys: ${keys.split('').join(' ')}`);
    } catch {
      return;
    }
  }
}

function deferredError(): { promise: Promise<never>; reject: (e: S2sError) => void } {
  let reject!: (e: S2sError) => void;
  const promise = new Promise<never>((_, r) => (reject = r));
  promise.catch(() => undefined);
  return { promise, reject };
}

/** One call's conversation state: what plays, the turn's stages, the tool calls of the response. */
class Conversation {
  session: S2sSession | undefined;
  readonly playout: Playout;
  private calls: Array<{ callId: string; name: string; args: string }> = [];
  private turnOpen = false;
  private modelAudioSeen = false;
  private frameSent = false;
  private readonly reported = new Set<string>();

  constructor(
    private readonly deps: RealtimeDeps,
    private readonly choice: RealtimeChoice<Call>,
    private readonly fail: (err: S2sError) => void,
  ) {
    this.playout = new Playout({
      sendAudio: (a, s) => deps.sendAudio(a, s),
      signal: deps.call.signal,
      warn: (m) => deps.logger.warn(m),
      onSend: (_item, at) => {
        if (this.turnOpen && !this.frameSent) {
          this.frameSent = true;
          this.stage('firstFrameSent', at);
        }
      },
    });
  }

  private stage(stage: RealtimeStage, atMs: number): void {
    this.deps.onStage?.(stage, atMs);
    this.choice.onStage?.(stage, atMs);
    this.deps.report('turn', `s2s ${stage} ${atMs}`);
  }

  onEvent(ev: S2sEvent): void {
    switch (ev.type) {
      case 'speech-started':
        return this.bargeIn();
      case 'speech-stopped':
        this.turnOpen = true;
        this.modelAudioSeen = false;
        this.frameSent = false;
        return this.stage('speechEnd', ev.atMs);
      case 'audio':
        if (this.turnOpen && !this.modelAudioSeen) {
          this.modelAudioSeen = true;
          this.stage('modelFirstAudio', Date.now());
        }
        return this.playout.push(ev.itemId, ev.pcm, ev.sampleRate);
      case 'transcript':
        return this.playout.text(ev.itemId, ev.delta);
      case 'tool-call':
        this.calls.push(ev);
        return;
      case 'response-done':
        return this.responseDone();
      case 'warning':
        this.deps.logger.warn({ vendor: this.choice.provider }, ev.message);
        return;
      case 'error':
        return this.fail(ev.error);
    }
  }

  /** The caller spoke over the model: silence now, and the model forgets what was not heard. */
  private bargeIn(): void {
    this.turnOpen = false;
    const cut = this.playout.stop();
    if (!cut || cut.playedMs >= cut.receivedMs) return;
    this.session?.truncate(cut.itemId, cut.playedMs);
    const heard = heardText(cut.text, [], cut.playedMs, cut.receivedMs);
    this.reported.add(cut.itemId);
    this.deps.report('say', `${heard} [interrupted at ${Math.round(cut.playedMs)} ms]`);
  }

  private responseDone(): void {
    const calls = this.calls;
    this.calls = [];
    // What the caller heard of each answer, once it has played (a barge-in reports its own share).
    for (const itemId of this.playout.itemsWithText()) {
      if (this.reported.has(itemId)) continue;
      void this.playout.flushText(itemId).then(() => {
        if (this.reported.has(itemId)) return;
        this.reported.add(itemId);
        const text = this.playout.transcriptOf(itemId);
        if (text) this.deps.report('say', text);
      });
    }
    if (calls.length > 0) void this.runTools(calls);
  }

  private async runTools(calls: Array<{ callId: string; name: string; args: string }>): Promise<void> {
    const { call } = this.deps;
    const results: Array<{ callId: string; name: string; output: string }> = [];
    for (const c of calls) {
      let args: Record<string, unknown> = {};
      try {
        args = JSON.parse(c.args || '{}') as Record<string, unknown>;
      } catch {
        // The model's arguments were not JSON: the tool gets none.
      }
      this.deps.report('turn', `tool ${c.name}`);
      if (c.name === 'hangup' || c.name === 'transfer') {
        await this.playout.idle();
        if (c.name === 'hangup') return call.hangup(typeof args.reason === 'string' ? args.reason : 'the model ended the call');
        const to = targetOf(this.choice, call);
        if (to) return call.transfer(to).catch((err: unknown) => this.deps.onError(asError(err)));
        results.push({ callId: c.callId, name: c.name, output: JSON.stringify({ error: 'nobody can take the call right now' }) });
        continue;
      }
      results.push({ callId: c.callId, name: c.name, output: await this.runTool(c.name, args) });
    }
    if (!call.signal.aborted) this.session?.toolResults(results);
  }

  private async runTool(name: string, args: Record<string, unknown>): Promise<string> {
    const tool = this.choice.tools?.find((t) => t.name === name);
    if (!tool) return JSON.stringify({ error: `no tool named ${name}` });
    try {
      const out: unknown = await tool.run(args, this.deps.call);
      return typeof out === 'string' ? out : JSON.stringify(out ?? null);
    } catch (err) {
      this.deps.logger.warn({ err: errorMessage(err), tool: name }, 'a realtime tool failed');
      return JSON.stringify({ error: errorMessage(err) });
    }
  }
}
