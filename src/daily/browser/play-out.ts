/**
 * The bot's voice, worker side: each clip goes to the page as one binary frame over the audio
 * socket; the promise settles when the page reports it played out (back-pressure: a bot that
 * awaits each clip never queues more than it says), rejects when the page refuses it, on abort
 * (the page stops it at once) and when the call ends.
 */
import type { Logger } from 'pino';
import type { AudioOut } from '../call-client.js';
import { CallEndedError, errorMessage } from '../../core/errors.js';
import type { AudioChannel, PageAudioMessage } from './audio-channel.js';
import { abortError } from './client-util.js';
import { DailyClientError } from './errors.js';

type Accepted = { durationMs: number; startInMs: number } | { error: string };

interface PendingPlay {
  resolve: () => void;
  reject: (err: unknown) => void;
  accepted: (m: Accepted) => void;
}

export class PlayOut {
  private seq = 0;
  private readonly plays = new Map<number, PendingPlay>();

  constructor(
    private readonly channel: () => AudioChannel | undefined,
    private readonly log: Logger,
    private readonly acceptTimeoutMs: number,
    /** Why the client can no longer play (browser lost, closed), if so. */
    private readonly ended: () => string | undefined,
  ) {}

  async play(audio: AudioOut, signal?: AbortSignal): Promise<void> {
    const id = ++this.seq;
    let accepted!: (m: Accepted) => void;
    const acceptedP = new Promise<Accepted>((r) => (accepted = r));
    const done = new Promise<void>((resolve, reject) => this.plays.set(id, { resolve, reject, accepted }));
    done.catch(() => undefined);
    // Binary, straight to the page: no base64, no JSON, no CDP.
    if (!this.channel()?.play(id, audio.pcm, audio.sampleRate, audio.text)) {
      this.plays.delete(id);
      // The page went away (its socket dropped): the call is ending; the client reports why.
      const why = this.ended() ?? (this.channel()?.dropped ? 'page_gone' : undefined);
      if (why) throw new CallEndedError(why);
      throw new DailyClientError('audio_play_failed', 'playing audio failed: the audio socket to the page is not open');
    }
    let acceptTimer: NodeJS.Timeout | undefined;
    const res = await Promise.race([
      acceptedP,
      done.then(
        () => ({ durationMs: 0, startInMs: 0 }),
        (err: unknown) => ({ error: errorMessage(err), cause: err }),
      ),
      new Promise<Accepted>(
        (r) => (acceptTimer = setTimeout(() => r({ error: 'the page did not accept the clip in time' }), this.acceptTimeoutMs)),
      ),
    ]).finally(() => clearTimeout(acceptTimer));
    if ('error' in res) {
      this.plays.delete(id);
      // The call ended under the clip (the page's socket dropped: rejectAll): that is no play failure.
      if ('cause' in res && res.cause instanceof CallEndedError) throw res.cause;
      const why = this.ended();
      if (why) throw new CallEndedError(why);
      throw new DailyClientError('audio_play_failed', `playing audio failed: ${res.error}`);
    }
    if (audio.pcm.length === 0) {
      // Text only: the page announced it (a no-op on Daily, words for the emulator).
      this.plays.delete(id);
      return;
    }
    // A page that stops reporting must not hang the bot forever.
    const safetyMs = res.durationMs + res.startInMs + 5_000;
    const onAbort = (): void => {
      const p = this.plays.get(id);
      if (!p || !signal) return;
      this.plays.delete(id);
      this.channel()?.stop(id);
      p.reject(abortError(signal));
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

  onMessage(m: PageAudioMessage): void {
    const p = this.plays.get(m.id);
    if (!p) return;
    if (m.t === 'accepted') p.accepted({ durationMs: m.durationMs, startInMs: m.startInMs });
    else if (m.t === 'failed') p.accepted({ error: m.error });
    else if (m.t === 'played') {
      this.plays.delete(m.id);
      p.resolve();
    }
  }

  rejectAll(err: unknown): void {
    for (const [id, p] of this.plays) {
      this.plays.delete(id);
      p.reject(err);
    }
  }
}
