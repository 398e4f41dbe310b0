/**
 * The production call client: the real @daily-co/daily-js (0.92.2) in headless Chromium.
 *
 * Layout, per worker process (one call per worker):
 *   Node (this class) ── playwright-core (CDP over a pipe) ──> Chromium (our user-data dir)
 *     └ static HTTP server on 127.0.0.1:0 ── serves ──> page: daily.js + bridge.js + worklet
 *   page → Node: one exposed function `__pbEmit(kind, json)` (daily events, audio frames, play-out)
 *   Node → page: `window.__patchbay.<method>(…)` evaluated with JSON arguments.
 *
 * `prepare()` pays everything but the join (browser, page, daily.js, `createCallObject()`,
 * AudioContext and worklet). `join()` has its own timeout: daily-js alone may wait ~186 s on a
 * network that drops packets silently.
 *
 * Process lifetime: Chromium is started by playwright with `--remote-debugging-pipe`; when the
 * worker dies, even by SIGKILL, the pipe closes and Chromium (with all its children) exits on
 * its own within about a second (see test/daily-browser.test.ts). What SIGKILL leaves is the
 * user-data dir in the temp dir; the next `prepare()` in any worker sweeps dirs whose pid is dead.
 * `close()` closes the browser, then SIGKILLs anything still carrying our user-data dir.
 */
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import {
  CallClientEvents,
  type AudioOut,
  type CanReceiveAudio,
  type DialOutOptions,
  type CallClient,
  type CallClientEvent,
  type CallClientListener,
  type CallClientOptions,
  type JoinOptions,
} from '../call-client.js';
import { CallEndedError } from '../../errors.js';
import {
  assertChromiumExecutable,
  CHROMIUM_FLAGS,
  DEFAULT_CHROMIUM_PATH,
  killProcessesWithArg,
  makeUserDataDir,
  sweepStaleUserDataDirs,
  waitForNoProcesses,
} from './chromium.js';
import { ChromiumMissingError, DailyClientError, JoinError } from './errors.js';
import { mapDailyEvent, type RawDailyEvent } from './events.js';
import { startStaticServer, type StaticServer } from './static-server.js';

export interface DailyBrowserCallClientOptions extends CallClientOptions {
  /** Browser launch + page load + createCallObject. Default 20 000. */
  prepareTimeoutMs?: number;
  /** Each daily-js action (sendDTMF, sipCallTransfer …). Default 10 000. */
  actionTimeoutMs?: number;
  /** Each step of close() (leave, destroy, browser close). Default 3 000. */
  closeStepTimeoutMs?: number;
  /** Chromium flags added after CHROMIUM_FLAGS (experiments, benchmarks). */
  extraChromiumArgs?: string[];
}

type PageResult<T = Record<string, unknown>> = ({ ok: true } & T) | { ok: false; error: string; lastError?: unknown };

interface PendingPlay {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** daily-js fatal error types that another attempt with the same room and token cannot fix. */
const NON_RETRYABLE_DAILY_ERRORS = new Set([
  'exp-room',
  'exp-token',
  'nbf-room',
  'nbf-token',
  'no-room',
  'not-allowed',
  'meeting-full',
  'ejected',
  'end-of-life',
]);

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function abortError(signal: AbortSignal): unknown {
  if (signal.reason !== undefined) return signal.reason;
  const e = new Error('This operation was aborted');
  e.name = 'AbortError';
  return e;
}

/** Builds the one typed error for a failed join from daily-js's rejection (often a plain string). */
export function joinErrorFrom(rejection: string, lastError: unknown, fallbackBundleUrl: string): JoinError {
  const le = (lastError ?? {}) as { errorMsg?: unknown; error?: { type?: unknown; msg?: unknown; details?: Record<string, unknown> } };
  const type = typeof le.error?.type === 'string' ? le.error.type : undefined;
  const details = le.error?.details ?? {};
  const bundleFailure =
    /Failed to load call object bundle|when loading call object bundle/.test(rejection) || details.on === 'load';
  if (bundleFailure) {
    const fromDetails = typeof details.bundleUrl === 'string' ? details.bundleUrl : undefined;
    const fromMsg = /bundle (\S+?):?\s/.exec(`${rejection} `)?.[1];
    const where = fromDetails ?? fromMsg ?? fallbackBundleUrl;
    return new JoinError(
      'daily_bundle_unavailable',
      `Daily's call-machine bundle could not be loaded from ${where}: ${rejection}`,
      { retryable: true, dailyErrorType: type ?? 'connection-error' },
    );
  }
  const retryable = type === undefined || !NON_RETRYABLE_DAILY_ERRORS.has(type);
  const msg = typeof le.errorMsg === 'string' && le.errorMsg !== rejection ? `${rejection} (${le.errorMsg})` : rejection;
  return new JoinError(type ? `daily_join_${type}` : 'daily_join_failed', `joining the Daily room failed: ${msg}`, {
    retryable,
    ...(type ? { dailyErrorType: type } : {}),
  });
}

export class DailyBrowserCallClient implements CallClient {
  readonly kind = 'daily' as const;

  private readonly events = new CallClientEvents();
  private readonly log: Logger;
  private readonly chromiumPath: string;
  private readonly bundleUrl: string | undefined;
  private readonly prepareTimeoutMs: number;
  private readonly actionTimeoutMs: number;
  private readonly transcriptionWaiters = new Set<{ resolve: () => void; reject: (e: Error) => void }>();
  private readonly closeStepTimeoutMs: number;
  private readonly extraChromiumArgs: string[];

  private preparing: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private context: BrowserContext | undefined;
  private page: Page | undefined;
  private server: StaticServer | undefined;
  private userDataDir: string | undefined;
  /** In the room: joined-meeting seen (or join resolved) and no left-meeting/fatal error since. */
  private joined = false;
  /** A join() is running: its outcome, not events, reports a failure to join. */
  private joinInFlight = false;
  /** join() gave up (timeout): late room events of that attempt must not reach listeners. */
  private joinAbandoned = false;
  private tearingDown = false;
  private playSeq = 0;
  private readonly plays = new Map<number, PendingPlay>();

  constructor(opts: DailyBrowserCallClientOptions) {
    this.log = opts.logger.child({ component: 'daily-browser' });
    this.chromiumPath = opts.chromiumPath ?? DEFAULT_CHROMIUM_PATH;
    this.bundleUrl = opts.bundleUrl;
    this.prepareTimeoutMs = opts.prepareTimeoutMs ?? 20_000;
    this.actionTimeoutMs = opts.actionTimeoutMs ?? 10_000;
    this.closeStepTimeoutMs = opts.closeStepTimeoutMs ?? 3_000;
    this.extraChromiumArgs = [...(opts.extraChromiumArgs ?? [])];
  }

  /** The private user-data dir (also the marker on every Chromium process of this client). */
  get chromiumUserDataDir(): string | undefined {
    return this.userDataDir;
  }

  on<E extends CallClientEvent>(event: E, listener: CallClientListener<E>): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Launches Chromium and loads daily-js. Idempotent. A failed prepare() releases what it had
   * started (browser, server, dir) before rejecting, and keeps rejecting with the same error.
   */
  prepare(): Promise<void> {
    if (this.closing) return Promise.reject(new CallEndedError('client closed'));
    this.preparing ??= this.doPrepare().catch(async (err: unknown) => {
      await this.teardown();
      throw err;
    });
    return this.preparing;
  }

  private async doPrepare(): Promise<void> {
    const t0 = Date.now();
    await assertChromiumExecutable(this.chromiumPath);
    void sweepStaleUserDataDirs().then(
      (dirs) => dirs.length > 0 && this.log.info({ dirs }, 'removed stale Chromium user-data dirs'),
      () => undefined,
    );
    this.userDataDir = await makeUserDataDir();
    this.server = await startStaticServer();
    try {
      this.context = await chromium.launchPersistentContext(this.userDataDir, {
        executablePath: this.chromiumPath,
        headless: true,
        args: [...CHROMIUM_FLAGS, ...this.extraChromiumArgs],
        // The worker owns shutdown; playwright's own signal handlers would race it.
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
        timeout: this.prepareTimeoutMs,
      });
    } catch (err) {
      const msg = (err as Error).message ?? String(err);
      if (/spawn \S+ (ENOENT|EACCES)/.test(msg)) throw new ChromiumMissingError(this.chromiumPath, err);
      throw new DailyClientError('chromium_launch_failed', `Chromium (${this.chromiumPath}) did not start: ${msg}`, {
        retryable: true,
        cause: err,
      });
    }
    this.context.on('close', () => {
      if (this.closing || this.tearingDown) return;
      this.log.error('Chromium closed unexpectedly');
      this.failCall('the browser closed unexpectedly', 'browser_closed');
    });
    const page = this.context.pages()[0] ?? (await this.context.newPage());
    this.page = page;
    page.on('crash', () => {
      this.log.error('the bot page crashed');
      this.failCall('the bot page crashed', 'page_crashed');
    });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') this.log.debug({ text: m.text() }, 'page console');
    });
    await page.exposeFunction('__pbEmit', (kind: string, json: string) => this.onPageMessage(kind, json));
    await page.goto(`${this.server.origin}/`, { timeout: this.prepareTimeoutMs });
    const init = await this.evalPage<{ version: string; meetingState: string }>('init', {
      bundleUrl: this.bundleUrl ?? null,
      avoidEval: true,
    });
    if (!init.ok) {
      throw new DailyClientError('daily_create_failed', `daily-js createCallObject() failed: ${init.error}`, { retryable: false });
    }
    this.log.debug({ prepareMs: Date.now() - t0, dailyJs: init.version }, 'daily client prepared');
  }

  async join(opts: JoinOptions): Promise<{ localSessionId: string }> {
    await this.prepare();
    if (this.joined) throw new DailyClientError('already_joined', 'join() called while already in a room');
    this.joinInFlight = true;
    this.joinAbandoned = false;
    try {
      return await this.doJoin(opts);
    } finally {
      this.joinInFlight = false;
    }
  }

  private async doJoin(opts: JoinOptions): Promise<{ localSessionId: string }> {
    const joining = this.evalPage<{ localSessionId: string }>('join', {
      url: opts.roomUrl,
      token: opts.token,
      userName: opts.userName,
    });
    let res: PageResult<{ localSessionId: string }>;
    try {
      res = await withTimeout(
        joining,
        opts.timeoutMs,
        () =>
          new JoinError('join_timeout', `joining ${opts.roomUrl} did not complete within ${opts.timeoutMs} ms`, {
            retryable: true,
          }),
      );
    } catch (err) {
      // Stop daily-js's own retries (leave() cancels a pending bundle load), without waiting long.
      this.joinAbandoned = true;
      void withTimeout(this.evalPage('leave'), this.closeStepTimeoutMs, () => new Error('leave timeout')).catch(() => undefined);
      joining.catch(() => undefined);
      if (err instanceof JoinError) throw err;
      throw new JoinError('join_failed', `joining the Daily room failed: ${(err as Error).message}`, {
        retryable: true,
        cause: err,
      });
    }
    if (!res.ok) {
      throw joinErrorFrom(res.error, res.lastError, this.bundleUrl ?? 'Daily\'s CDN');
    }
    this.joined = true;
    return { localSessionId: res.localSessionId };
  }

  async leave(): Promise<void> {
    if (!this.page || this.closing) return;
    this.rejectPlays(new CallEndedError('left'));
    const res = await withTimeout(this.evalPage('leave'), this.closeStepTimeoutMs, () =>
      new DailyClientError('daily_leave_timeout', `leave() did not complete within ${this.closeStepTimeoutMs} ms`, {
        retryable: true,
      }),
    );
    this.joined = false;
    if (!res.ok) throw new DailyClientError('daily_leave_failed', `leave() failed: ${res.error}`);
  }

  async sendAudio(audio: AudioOut, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw abortError(signal);
    await this.prepare();
    if (audio.pcm.length === 0) {
      // Nothing to play. The page still announces the text (a no-op on Daily, words for the emulator).
      if (audio.text) await this.evalPage('play', ++this.playSeq, '', audio.sampleRate, audio.text);
      return;
    }
    const id = ++this.playSeq;
    const b64 = Buffer.from(audio.pcm.buffer, audio.pcm.byteOffset, audio.pcm.byteLength).toString('base64');
    const done = new Promise<void>((resolve, reject) => this.plays.set(id, { resolve, reject }));
    done.catch(() => undefined);
    const res = await this.evalPage<{ durationMs: number; startInMs: number }>('play', id, b64, audio.sampleRate, audio.text);
    if (!res.ok) {
      this.plays.delete(id);
      throw new DailyClientError('audio_play_failed', `playing audio failed: ${res.error}`);
    }
    // A page that stops reporting must not hang the bot forever.
    const safetyMs = res.durationMs + res.startInMs + 5_000;
    const onAbort = (): void => {
      const p = this.plays.get(id);
      if (!p) return;
      this.plays.delete(id);
      void this.evalPage('stopAudio', id).catch(() => undefined);
      p.reject(abortError(signal as AbortSignal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => {
      const p = this.plays.get(id);
      if (!p) return;
      this.plays.delete(id);
      this.log.warn({ id }, 'no play-out report from the page; assuming played');
      p.resolve();
    }, safetyMs);
    try {
      await done;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async receiveAudio(enabled: boolean): Promise<void> {
    await this.prepare();
    const res = await this.evalPage('receiveAudio', enabled);
    if (!res.ok) throw new DailyClientError('receive_audio_failed', `receiveAudio(${enabled}) failed: ${res.error}`);
  }

  sendDTMF(opts: { sessionId: string; tones: string }): Promise<void> {
    return this.invoke('sendDTMF', [{ sessionId: opts.sessionId, tones: opts.tones }]);
  }

  sipCallTransfer(opts: { sessionId: string; toEndPoint: string }): Promise<void> {
    return this.invoke('sipCallTransfer', [{ sessionId: opts.sessionId, toEndPoint: opts.toEndPoint }]);
  }

  sipRefer(opts: { sessionId: string; toEndPoint: string }): Promise<void> {
    return this.invoke('sipRefer', [{ sessionId: opts.sessionId, toEndPoint: opts.toEndPoint }]);
  }

  /**
   * daily-js's startTranscription() returns at once; transcription runs only after Daily's
   * `transcription-started` event. Resolves on that event, rejects on `transcription-error` or timeout,
   * so a bot that listens right after this call misses nothing.
   */
  async startTranscription(opts?: { language?: string }): Promise<void> {
    let settle!: { resolve: () => void; reject: (e: Error) => void };
    const started = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    this.transcriptionWaiters.add(settle);
    const timer = setTimeout(
      () => settle.reject(new DailyClientError('daily_action_timeout', `no transcription-started within ${this.actionTimeoutMs} ms`, { retryable: true })),
      this.actionTimeoutMs,
    );
    try {
      await this.invoke('startTranscription', opts?.language ? [{ language: opts.language }] : []);
      await started;
    } finally {
      clearTimeout(timer);
      this.transcriptionWaiters.delete(settle);
    }
  }

  stopTranscription(): Promise<void> {
    return this.invoke('stopTranscription', []);
  }

  sendAppMessage(data: unknown, to?: string): Promise<void> {
    return this.invoke('sendAppMessage', [data, to ?? '*']);
  }

  ejectParticipant(sessionId: string): Promise<void> {
    return this.invoke('updateParticipant', [sessionId, { eject: true }]);
  }

  async startDialOut(opts: DialOutOptions): Promise<{ sessionId: string }> {
    const r = (await this.invokeValue('startDialOut', [opts])) as { session?: { sessionId?: unknown } } | null;
    const sessionId = r?.session?.sessionId;
    if (typeof sessionId !== 'string') throw new DailyClientError('daily_startDialOut_failed', 'startDialOut() returned no session');
    return { sessionId };
  }

  stopDialOut(sessionId: string): Promise<void> {
    return this.invoke('stopDialOut', [{ sessionId }]);
  }

  setCanReceive(sessionId: string, canReceive: CanReceiveAudio): Promise<void> {
    const audio = (v: boolean) => ({ audio: v });
    const permission = {
      ...(canReceive.base === undefined ? {} : { base: audio(canReceive.base) }),
      ...(canReceive.byParticipantId
        ? { byParticipantId: Object.fromEntries(Object.entries(canReceive.byParticipantId).map(([id, v]) => [id, audio(v as boolean)])) }
        : {}),
    };
    return this.invoke('updateParticipant', [sessionId, { updatePermissions: { canReceive: permission } }]);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    await this.preparing?.catch(() => undefined);
    await this.teardown();
  }

  /** Releases everything that exists; safe to call again. */
  private async teardown(): Promise<void> {
    this.tearingDown = true;
    this.rejectPlays(new CallEndedError('client closed'));
    const step = async (what: string, p: Promise<unknown>): Promise<void> => {
      try {
        await withTimeout(p, this.closeStepTimeoutMs, () => new Error(`${what} timed out`));
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, `close: ${what} failed`);
      }
    };
    if (this.page && !this.page.isClosed()) {
      // destroy() leaves first when in a call, so the room sees us go.
      await step('daily destroy', this.evalPage('destroy'));
    }
    this.joined = false;
    if (this.context) await step('browser close', this.context.close());
    if (this.userDataDir) {
      const killed = await killProcessesWithArg(this.userDataDir);
      if (killed > 0) this.log.warn({ killed }, 'killed Chromium processes left after close');
      const left = await waitForNoProcesses(this.userDataDir, 2_000);
      if (left.length > 0) this.log.error({ pids: left }, 'Chromium processes survived close');
    }
    if (this.server) await step('static server close', this.server.close());
    if (this.userDataDir) await rm(this.userDataDir, { recursive: true, force: true }).catch(() => undefined);
    this.page = undefined;
    this.context = undefined;
    this.server = undefined;
  }

  // ---- internals ----

  private async invoke(method: string, args: unknown[]): Promise<void> {
    await this.invokeValue(method, args);
  }

  /** Calls a daily-js method in the page; resolves with what it returned (null for nothing). */
  private async invokeValue(method: string, args: unknown[]): Promise<unknown> {
    if (this.closing) throw new CallEndedError('client closed');
    if (!this.page) throw new DailyClientError('not_prepared', `${method}() called before prepare()/join()`);
    const res = await withTimeout(
      this.evalPage<{ value: unknown }>('invoke', method, args),
      this.actionTimeoutMs,
      () =>
        new DailyClientError('daily_action_timeout', `${method}() got no answer within ${this.actionTimeoutMs} ms`, {
          retryable: true,
        }),
    );
    if (!res.ok) throw new DailyClientError(`daily_${method}_failed`, `${method}() failed: ${res.error}`);
    return res.value;
  }

  /** Calls `window.__patchbay[method](...args)` in the page. Arguments travel as JSON. */
  private async evalPage<T = Record<string, unknown>>(method: string, ...args: unknown[]): Promise<PageResult<T>> {
    const page = this.page;
    if (!page) return { ok: false, error: 'no page' };
    const argList = args.map((a) => (a === undefined ? 'undefined' : JSON.stringify(a))).join(',');
    try {
      return (await page.evaluate(`window.__patchbay.${method}(${argList})`)) as PageResult<T>;
    } catch (err) {
      return { ok: false, error: `page unavailable: ${(err as Error).message.split('\n')[0]}` };
    }
  }

  private onPageMessage(kind: string, json: string): void {
    let data: unknown;
    try {
      data = JSON.parse(json);
    } catch {
      return;
    }
    switch (kind) {
      case 'daily': {
        const ev = data as RawDailyEvent;
        if (ev.action === 'load-attempt-failed') this.log.debug('daily-js: call-machine bundle load attempt failed');
        if (ev.action === 'transcription-started') for (const w of this.transcriptionWaiters) w.resolve();
        if (ev.action === 'transcription-error') {
          const msg = typeof ev.errorMsg === 'string' ? ev.errorMsg : 'transcription failed to start';
          for (const w of this.transcriptionWaiters) w.reject(new DailyClientError('daily_transcription_error', msg, { retryable: false }));
        }
        const mapped = mapDailyEvent(ev);
        if (!mapped) return;
        if (this.joinAbandoned) {
          this.log.debug({ event: mapped.event }, 'daily-js event after an abandoned join: dropped');
          return;
        }
        if (mapped.event === 'joined-meeting') this.joined = true;
        if (mapped.event === 'error' && mapped.payload.fatal) {
          // A failed join is reported once, by join()'s rejection (daily-js also emits `error`).
          if (this.joinInFlight && !this.joined) {
            this.log.debug({ err: mapped.payload.message }, 'daily-js error while joining (reported by join())');
            return;
          }
          this.joined = false;
        }
        if (mapped.event === 'left-meeting') {
          // Only a bot that was in the room leaves it (daily-js also says so after a failed or cancelled join).
          if (!this.joined) return;
          this.joined = false;
        }
        this.events.emit(mapped.event, mapped.payload as never);
        return;
      }
      case 'played': {
        const id = (data as { id: number }).id;
        const p = this.plays.get(id);
        if (p) {
          this.plays.delete(id);
          p.resolve();
        }
        return;
      }
      case 'audio': {
        const a = data as { participantId: string; sampleRate: number; pcm: string };
        const buf = Buffer.from(a.pcm, 'base64');
        // Copy: a pooled Buffer may start at an odd offset, which Int16Array cannot view.
        const pcm = new Int16Array(buf.byteLength >> 1);
        new Uint8Array(pcm.buffer).set(buf.subarray(0, pcm.byteLength));
        this.events.emit('audio-frame', { participantId: a.participantId, sampleRate: a.sampleRate, pcm });
        return;
      }
      default:
        return;
    }
  }

  private failCall(message: string, code: string): void {
    this.rejectPlays(new CallEndedError(code));
    const wasJoined = this.joined;
    this.joined = false;
    this.events.emit('error', { message, fatal: true, code });
    if (wasJoined) this.events.emit('left-meeting', { reason: code });
  }

  private rejectPlays(err: unknown): void {
    for (const [id, p] of this.plays) {
      this.plays.delete(id);
      p.reject(err);
    }
  }
}
