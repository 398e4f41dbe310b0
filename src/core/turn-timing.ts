/**
 * Per-turn latency (issue 23, item 5): for each turn of a conversation, when each of its stages
 * happened, from the caller's end of speech to the first frame of the bot's answer sent to them.
 *
 * Stages, in the order a turn passes them:
 *
 *   cascade (STT → LLM → TTS):  speechEnd → transcript → llmFirstToken → ttsFirstAudio → firstFrameSent
 *   speech-to-speech:           speechEnd → modelFirstAudio → firstFrameSent
 *
 * - `speechEnd`: the VAD heard the caller stop (its `minSilenceMs` of silence are over);
 * - `transcript`: the caller's turn is in (`listen()` returns it: its final transcript arrived and the turn ended);
 * - `llmFirstToken`: the first text of the bot's LLM (`call.llm.stream()`; `chat()`: its whole answer);
 * - `ttsFirstAudio`: the first audio of the bot's answer out of its TTS (a cached phrase: at once);
 * - `modelFirstAudio`: the first audio of a speech-to-speech model;
 * - `firstFrameSent`: the first frame of the answer handed to the call client (the caller hears it now).
 *
 * A turn opens at a caller stage (`speechEnd`, or `transcript` without voice activity) and is
 * finished at `firstFrameSent`; stages the pipeline does not pass are absent. Lives in core: the
 * worker measures (src/workers/child/turn-clock.ts), the service records, exports and shows.
 */

export const TURN_STAGES = ['speechEnd', 'transcript', 'llmFirstToken', 'ttsFirstAudio', 'modelFirstAudio', 'firstFrameSent'] as const;
export type TurnStage = (typeof TURN_STAGES)[number];

/** Where each stage sits in a turn (the two pipelines' audio stages share a place). */
const ORDER: Record<TurnStage, number> = {
  speechEnd: 0,
  transcript: 1,
  llmFirstToken: 2,
  ttsFirstAudio: 3,
  modelFirstAudio: 3,
  firstFrameSent: 4,
};

export function isTurnStage(s: unknown): s is TurnStage {
  return TURN_STAGES.some((t) => t === s);
}

/** A finished turn. */
export interface TurnTiming {
  /** 1 for the call's first timed turn. */
  index: number;
  /** Epoch ms of its first stage (every offset counts from here). */
  atMs: number;
  /** Ms from `atMs` per stage reached. */
  stages: Partial<Record<TurnStage, number>>;
  /** The stage that took longest since the one before it (undefined with one stage). */
  slowest: TurnStage | undefined;
  /** First stage → `firstFrameSent`, ms. */
  totalMs: number;
}

/** Each reached stage's own time: ms since the stage before it (the first stage has none). */
export function stageDurations(stages: Partial<Record<TurnStage, number>>): Array<[TurnStage, number]> {
  const reached = TURN_STAGES.filter((s) => stages[s] !== undefined).sort((a, b) => ORDER[a] - ORDER[b]);
  const out: Array<[TurnStage, number]> = [];
  for (let i = 1; i < reached.length; i++) {
    const s = reached[i]!;
    out.push([s, Math.max(0, stages[s]! - stages[reached[i - 1]!]!)]);
  }
  return out;
}

function slowestOf(stages: Partial<Record<TurnStage, number>>): TurnStage | undefined {
  let best: [TurnStage, number] | undefined;
  for (const d of stageDurations(stages)) if (!best || d[1] > best[1]) best = d;
  return best?.[0];
}

/**
 * Times the turns of one call: `mark(stage)` as things happen, `onTurn` once a turn is finished.
 * Rules: a caller stage opens a turn (a later `speechEnd` before the transcript replaces the
 * earlier: the caller paused and went on); a bot stage counts only in an open turn and only the
 * first time; a `speechEnd` while the bot answers is kept for the next turn; a new `transcript`
 * after the turn moved on starts a new turn (the unfinished one is dropped: the bot answered
 * nothing); `firstFrameSent` finishes it. Speech-to-speech feeds
 * `speechEnd`, `modelFirstAudio`, `firstFrameSent`.
 */
export class TurnTimer {
  private open: { stages: Partial<Record<TurnStage, number>>; last: number } | undefined;
  private count = 0;
  /** A `speechEnd` heard while the bot was answering the open turn. */
  private pending: number | undefined;

  constructor(
    private readonly onTurn: (t: TurnTiming) => void,
    private readonly now: () => number = Date.now,
  ) {}

  mark(stage: TurnStage, atMs = this.now()): void {
    const o = this.open;
    const order = ORDER[stage];
    if (stage === 'speechEnd') {
      // Before the transcript: the caller paused and went on (the last end counts). After it: the
      // bot is answering; kept for the next turn in case the caller spoke again meanwhile.
      if (!o || o.last === 0) {
        this.open = { stages: { speechEnd: atMs }, last: 0 };
        this.pending = undefined;
      } else this.pending = atMs;
      return;
    }
    if (stage === 'transcript') {
      if (o && o.last === 0) this.set(o, stage, atMs);
      else this.open = { stages: { ...(this.pending !== undefined ? { speechEnd: this.pending } : {}), transcript: atMs }, last: order };
      this.pending = undefined;
      return;
    }
    // The cascade's bot stages answer a transcript; audio after a bare end of speech is a prompt still playing.
    if (!o || o.stages[stage] !== undefined || order <= o.last || (stage !== 'modelFirstAudio' && o.last < 1)) return;
    this.set(o, stage, atMs);
    if (stage === 'firstFrameSent') this.finish(o.stages);
  }

  /** Forgets an open turn (the call ended). */
  reset(): void {
    this.open = undefined;
    this.pending = undefined;
  }

  private set(o: NonNullable<TurnTimer['open']>, stage: TurnStage, atMs: number): void {
    o.stages[stage] = atMs;
    o.last = ORDER[stage];
  }

  private finish(abs: Partial<Record<TurnStage, number>>): void {
    this.open = undefined;
    const atMs = Math.min(...Object.values(abs));
    const stages: Partial<Record<TurnStage, number>> = {};
    for (const s of TURN_STAGES) if (abs[s] !== undefined) stages[s] = abs[s] - atMs;
    this.count++;
    this.onTurn({ index: this.count, atMs, stages, slowest: slowestOf(stages), totalMs: stages.firstFrameSent ?? 0 });
  }
}

/** How a turn is kept in a call's event log (kind `turn_latency`): `#2 speechEnd=0 transcript=412 … firstFrameSent=812`. */
export function encodeTurn(t: TurnTiming): string {
  return [`#${t.index}`, ...TURN_STAGES.filter((s) => t.stages[s] !== undefined).map((s) => `${s}=${Math.round(t.stages[s]!)}`)].join(' ');
}

/** The event log's form, exactly (the PII masker keeps only values of this shape). */
export const TURN_EVENT = /^#\d{1,6}( [A-Za-z]{1,20}=\d{1,9}){1,8}$/;
export const TURN_EVENT_KIND = 'turn_latency';

/** A `turn_latency` entry back to a turn (undefined when it is not one). */
export function decodeTurn(value: string, atMs: number): TurnTiming | undefined {
  if (!TURN_EVENT.test(value)) return undefined;
  const [head, ...parts] = value.split(' ');
  const stages: Partial<Record<TurnStage, number>> = {};
  for (const p of parts) {
    const [k, v] = p.split('=');
    if (isTurnStage(k)) stages[k] = Number(v);
  }
  return { index: Number(head!.slice(1)), atMs, stages, slowest: slowestOf(stages), totalMs: stages.firstFrameSent ?? 0 };
}

/** A call's turn latency (first stage → first frame sent): count, p50 and p95 in ms (nearest rank); null without turns. */
export interface TurnLatencySummary {
  turns: number;
  p50Ms: number;
  p95Ms: number;
}

export function summarizeTurns(turns: readonly TurnTiming[]): TurnLatencySummary | null {
  const totals = turns.filter((t) => t.stages.firstFrameSent !== undefined).map((t) => t.totalMs);
  if (totals.length === 0) return null;
  totals.sort((a, b) => a - b);
  const rank = (p: number) => totals[Math.min(totals.length - 1, Math.max(0, Math.ceil(p * totals.length) - 1))]!;
  return { turns: totals.length, p50Ms: rank(0.5), p95Ms: rank(0.95) };
}

/** The turns kept in an event log. */
export function turnsOfEvents(events: ReadonlyArray<{ kind: string; value: string; atMs: number }>): TurnTiming[] {
  const out: TurnTiming[] = [];
  for (const e of events) {
    if (e.kind !== TURN_EVENT_KIND) continue;
    const t = decodeTurn(e.value, e.atMs);
    if (t) out.push(t);
  }
  return out;
}

/** A turn as another process sent it (a worker runs bot code): known stages with sane numbers only, derived fields recomputed. */
export function checkedTurn(x: unknown): TurnTiming | undefined {
  if (typeof x !== 'object' || x === null || !('index' in x) || !('atMs' in x) || !('stages' in x)) return undefined;
  const { index, atMs, stages } = x;
  if (!Number.isSafeInteger(index) || typeof atMs !== 'number' || !Number.isFinite(atMs) || typeof stages !== 'object' || !stages)
    return undefined;
  const given = new Map<string, unknown>(Object.entries(stages));
  const clean: Partial<Record<TurnStage, number>> = {};
  for (const s of TURN_STAGES) {
    const v = given.get(s);
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0 && v < 3_600_000) clean[s] = Math.round(v);
  }
  if (clean.firstFrameSent === undefined) return undefined;
  return { index: Number(index), atMs, stages: clean, slowest: slowestOf(clean), totalMs: clean.firstFrameSent };
}
