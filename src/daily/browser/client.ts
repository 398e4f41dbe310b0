/**
 * The production call client: the real @daily-co/daily-js (0.92.2) in headless Chromium.
 *
 * Per worker process (one call per worker): Node (this class) drives one page (bot-page.ts: a
 * context in a browser of the parent's browser host over our small CDP client, or a browser of its
 * own through playwright-core), served by its static server on 127.0.0.1 (daily.js, bridge, worklet),
 * with a /audio WebSocket carrying binary PCM both ways (audio-channel.ts). Page → Node: the binding
 * `__pbEmit1(kind + '\n' + json)` for daily-js events; Node → page: `window.__patchbay.<method>(…)`.
 *
 * `prepare()` pays everything but the join (page, daily.js, `createCallObject()`, AudioContext,
 * worklet, audio socket). `join()` has its own timeout: daily-js alone may wait ~186 s on a
 * network that drops packets silently.
 *
 * When the browser goes away under the page (crashed, hung and killed by the host, restarted), the
 * client emits a fatal `error` with code `browser_lost` (and `left-meeting` when in a room) before
 * any pending call into the page fails: the call's outcome is `browser_lost`. A SIGKILLed worker's
 * page goes too: its own Chromium exits when its pipe closes; a shared browser disposes its context.
 */
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import {
  CallClientEvents,
  type AudioOut,
  type CallClient,
  type CallClientEvent,
  type CallClientListener,
  type CallClientOptions,
  type JoinOptions,
} from '../call-client.js';
import { CALL_CLIENT_ACTIONS } from '../call-client-vocab.js';
import { CallEndedError, errorMessage } from '../../core/errors.js';
import { AudioChannel } from './audio-channel.js';
import { openOwnBrowser, openSharedPage, type BotPage, type PageDriver } from './bot-page.js';
import { assertChromiumExecutable, DEFAULT_CHROMIUM_PATH, makeUserDataDir } from './chromium.js';
import { abortError, joinErrorFrom, withTimeout } from './client-util.js';
import { DailyClientError, JoinError } from './errors.js';
import { isRawDailyEvent, mapDailyEvent } from './events.js';
import { DailyJsActions } from './actions.js';
import { PlayOut } from './play-out.js';
import { startStaticServer, type StaticServer } from './static-server.js';

export { joinErrorFrom } from './client-util.js';

export interface DailyBrowserCallClientOptions extends CallClientOptions {
  /** Browser launch + page load + createCallObject. Default 20 000. */
  prepareTimeoutMs?: number;
  /** Each daily-js action (sendDTMF, sipCallTransfer …). Default 10 000. */
  actionTimeoutMs?: number;
  /** Each step of close() (leave, destroy, browser close). Default 3 000. */
  closeStepTimeoutMs?: number;
  /** Chromium flags added after CHROMIUM_FLAGS (experiments, benchmarks; per-worker layout). */
  extraChromiumArgs?: string[];
  /**
   * A browser served by the parent's browser host (shared layout). Without it the client launches
   * a Chromium of its own (per-worker layout).
   */
  sharedBrowser?: { wsEndpoint: string; browserPid?: number };
}

type PageResult<T = Record<string, unknown>> = ({ ok: true } & T) | { ok: false; error: string; lastError?: unknown };

export class DailyBrowserCallClient extends DailyJsActions implements CallClient {
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
  private bot: BotPage | undefined;
  private page: PageDriver | undefined;
  private audio: AudioChannel | undefined;
  private readonly sharedBrowser: DailyBrowserCallClientOptions['sharedBrowser'];
  private lost = false;
  private server: StaticServer | undefined;
  private userDataDir: string | undefined;
  /** In the room: joined-meeting seen (or join resolved) and no left-meeting/fatal error since. */
  private joined = false;
  /** A join() is running: its outcome, not events, reports a failure to join. */
  private joinInFlight = false;
  /** join() gave up (timeout): late room events of that attempt must not reach listeners. */
  private joinAbandoned = false;
  private tearingDown = false;
  private readonly playOut: PlayOut;

  constructor(opts: DailyBrowserCallClientOptions) {
    super();
    this.log = opts.logger.child({ component: 'daily-browser' });
    this.chromiumPath = opts.chromiumPath ?? DEFAULT_CHROMIUM_PATH;
    this.bundleUrl = opts.bundleUrl;
    this.prepareTimeoutMs = opts.prepareTimeoutMs ?? 20_000;
    this.actionTimeoutMs = opts.actionTimeoutMs ?? 10_000;
    this.closeStepTimeoutMs = opts.closeStepTimeoutMs ?? 3_000;
    this.extraChromiumArgs = [...(opts.extraChromiumArgs ?? [])];
    this.sharedBrowser = opts.sharedBrowser;
    this.playOut = new PlayOut(
      () => this.audio,
      this.log,
      this.actionTimeoutMs,
      () => (this.lost ? 'browser_lost' : this.closing ? 'client closed' : undefined),
    );
  }

  /** 'shared' (a page in the host's browser) or 'per-worker' (a browser of our own). */
  get layout(): 'shared' | 'per-worker' {
    return this.sharedBrowser ? 'shared' : 'per-worker';
  }

  /** PSS of the browser processes this client's page costs (its renderer, or its whole own browser), in bytes. */
  async pageMemoryBytes(): Promise<number> {
    return (await this.bot?.memoryBytes().catch(() => 0)) ?? 0;
  }

  /** The pids pageMemoryBytes() counts. */
  async pagePids(): Promise<number[]> {
    return (await this.bot?.pids().catch(() => [])) ?? [];
  }

  /** Frames the page dropped because the audio socket was backed up, and frames received. */
  get audioStats(): { framesIn: number; dropped: number } {
    return { framesIn: this.audio?.framesIn ?? 0, dropped: this.audio?.droppedFrames ?? 0 };
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
    const audio = new AudioChannel(
      this.log,
      (f) => this.events.emit('audio-frame', f),
      (m) => this.playOut.onMessage(m),
      () => this.onAudioSocketClosed(),
    );
    this.audio = audio;
    this.server = await startStaticServer(audio.handleUpgrade);
    const common = {
      chromiumPath: this.chromiumPath,
      timeoutMs: this.prepareTimeoutMs,
      extraChromiumArgs: this.extraChromiumArgs,
      log: this.log,
    };
    if (this.sharedBrowser) {
      this.bot = await openSharedPage({ ...common, wsEndpoint: this.sharedBrowser.wsEndpoint, browserPid: this.sharedBrowser.browserPid });
    } else {
      await assertChromiumExecutable(this.chromiumPath);
      this.userDataDir = await makeUserDataDir();
      this.bot = await openOwnBrowser({ ...common, userDataDir: this.userDataDir });
    }
    const tPage = Date.now();
    this.bot.onLost(() => this.onBrowserLost());
    const page = this.bot.driver;
    this.page = page;
    page.onCrash(() => {
      this.log.error('the bot page crashed');
      this.failCall('the bot page crashed', 'page_crashed');
    });
    page.onConsole((type, text) => {
      if (type === 'error' || type === 'warning') this.log.debug({ text }, 'page console');
    });
    await page.exposeEmit((payload) => {
      const nl = payload.indexOf('\n');
      if (nl > 0) this.onPageMessage(payload.slice(0, nl), payload.slice(nl + 1));
    });
    await page.goto(`${this.server.origin}/`, this.prepareTimeoutMs);
    const tLoaded = Date.now();
    const audioUrl = `${this.server.origin.replace(/^http/, 'ws')}${audio.path}?token=${audio.token}`;
    const init = await this.evalPage<{ version: string; meetingState: string }>('init', {
      bundleUrl: this.bundleUrl ?? null,
      avoidEval: true,
      audioUrl,
    });
    if (!init.ok) {
      throw new DailyClientError('daily_create_failed', `daily-js createCallObject() failed: ${init.error}`, { retryable: false });
    }
    const steps = { pageMs: tPage - t0, loadMs: tLoaded - tPage, initMs: Date.now() - tLoaded };
    this.log.debug({ prepareMs: Date.now() - t0, steps, dailyJs: init.version, layout: this.layout }, 'daily client prepared');
    // Off the prepare path: which renderer is ours (memory watch), while the worker sits idle.
    void this.bot.identifyRenderer((ms) => this.evalPage('burn', ms)).catch(() => undefined);
  }

  /** The page's audio socket dropped: the page or the whole browser is gone; find out which, then end. */
  private onAudioSocketClosed(): void {
    if (this.closing || this.tearingDown || this.lost) return;
    this.playOut.rejectAll(new CallEndedError('page_gone'));
    // The browser's own report (disconnected, crash) usually follows within milliseconds.
    setTimeout(() => {
      if (this.closing || this.tearingDown || this.lost) return;
      if (this.bot?.layout === 'shared' && !this.page?.browserConnected) this.onBrowserLost();
      else this.failCall('the audio socket to the bot page closed', 'page_crashed');
    }, 1_000).unref();
  }

  private onBrowserLost(): void {
    if (this.closing || this.tearingDown || this.lost) return;
    this.lost = true;
    this.log.error({ layout: this.layout }, 'the browser went away under the bot page');
    this.failCall('the browser went away (crashed, hung or restarted)', 'browser_lost');
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
      throw new JoinError('join_failed', `joining the Daily room failed: ${errorMessage(err)}`, {
        retryable: true,
        cause: err,
      });
    }
    if (!res.ok) {
      throw joinErrorFrom(res.error, res.lastError, this.bundleUrl ?? "Daily's CDN");
    }
    this.joined = true;
    return { localSessionId: res.localSessionId };
  }

  async leave(): Promise<void> {
    if (!this.page || this.closing) return;
    this.playOut.rejectAll(new CallEndedError('left'));
    const res = await withTimeout(
      this.evalPage('leave'),
      this.closeStepTimeoutMs,
      () =>
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
    if (this.lost) throw new CallEndedError('browser_lost');
    if (audio.pcm.length === 0 && !audio.text) return;
    return this.playOut.play(audio, signal);
  }

  async receiveAudio(enabled: boolean): Promise<void> {
    await this.prepare();
    const res = await this.evalPage('receiveAudio', enabled);
    if (!res.ok) throw new DailyClientError('receive_audio_failed', `receiveAudio(${enabled}) failed: ${res.error}`);
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
      () =>
        settle.reject(
          new DailyClientError('daily_action_timeout', `no transcription-started within ${this.actionTimeoutMs} ms`, { retryable: true }),
        ),
      this.actionTimeoutMs,
    );
    try {
      await this.invoke(CALL_CLIENT_ACTIONS.startTranscription.daily, opts?.language ? [{ language: opts.language }] : []);
      await started;
    } finally {
      clearTimeout(timer);
      this.transcriptionWaiters.delete(settle);
    }
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
    this.playOut.rejectAll(new CallEndedError('client closed'));
    const step = async (what: string, p: Promise<unknown>): Promise<void> => {
      try {
        await withTimeout(p, this.closeStepTimeoutMs, () => new Error(`${what} timed out`));
      } catch (err) {
        this.log.debug({ err: errorMessage(err) }, `close: ${what} failed`);
      }
    };
    if (this.page && !this.page.closed && !this.lost) {
      // destroy() leaves first when in a call, so the room sees us go.
      await step('daily destroy', this.evalPage('destroy'));
    }
    this.joined = false;
    this.audio?.close();
    if (this.bot) await step('browser close', this.bot.close(this.closeStepTimeoutMs));
    if (this.server) await step('static server close', this.server.close());
    if (this.userDataDir) await rm(this.userDataDir, { recursive: true, force: true }).catch(() => undefined);
    this.page = undefined;
    this.bot = undefined;
    this.server = undefined;
  }

  // ---- internals ----

  protected async invoke(method: string, args: unknown[]): Promise<void> {
    await this.invokeValue(method, args);
  }

  /** Calls a daily-js method in the page; resolves with what it returned (null for nothing). */
  protected async invokeValue(method: string, args: unknown[]): Promise<unknown> {
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
      // The browser going away fails every evaluation: say so first (the call's outcome), then fail this one.
      if (this.bot?.layout === 'shared' && !page.browserConnected) this.onBrowserLost();
      return { ok: false, error: `page unavailable: ${errorMessage(err).split('\n')[0]}` };
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
        if (!isRawDailyEvent(data)) return;
        const ev = data;
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
        this.events.emit(mapped.event, mapped.payload);
        return;
      }
      default:
        return;
    }
  }

  private failCall(message: string, code: string): void {
    this.playOut.rejectAll(new CallEndedError(code));
    const wasJoined = this.joined;
    this.joined = false;
    this.events.emit('error', { message, fatal: true, code });
    if (wasJoined) this.events.emit('left-meeting', { reason: code });
  }
}
