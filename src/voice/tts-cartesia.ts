/**
 * Cartesia over its TTS WebSocket, through the official `@cartesia/cartesia-js` (4.x): one socket
 * per worker (the SDK's `client.tts.websocket()`, reopened when it was closed), one context per turn
 * (`ws.context()`: `push` with `continue: true`, `no_more_inputs`, `cancel`), word timestamps on
 * (`add_timestamps`). The SDK is imported on first use or at `warm()` (worker start), never by the
 * main process (test/app/module-graph.test.ts).
 *
 * The SDK is loaded as CommonJS on purpose: its ESM build looks for `ws` with `require('ws')`,
 * which throws in an ES module, so on Node 20 it finds no WebSocket at all ("The ws peer dependency
 * is required") and on Node 22 it silently takes the global WebSocket, which cannot send headers
 * (the key then travels in the URL). The CommonJS build finds `ws` and sends the key as a header.
 */
import { createRequire } from 'node:module';
import type { Cartesia } from '@cartesia/cartesia-js';
import { resample } from './resample.js';
import { EventQueue, audioOf, collect, vendorError } from './tts-stream.js';
import { TtsError, type TtsProvider, type TtsTurn, type TtsTurnEvent, type TurnOptions } from './tts-types.js';

export interface CartesiaTtsOptions {
  apiKey: string;
  /** The API base (CARTESIA_BASE_URL); the SDK derives `wss://…/tts/websocket` from it. Unset: Cartesia's. */
  baseUrl?: string | undefined;
  /** `sonic-3` unless set. */
  model?: string | undefined;
  voice: string;
  /** The call's rate (the vendor is asked for it when it offers it, else for 16 000 Hz, resampled). */
  sampleRate: number;
  /** Extra trusted certificate (PEM) for the socket (tests in one process; workers use NODE_EXTRA_CA_CERTS). */
  ca?: string | undefined;
}

type CartesiaSdk = typeof import('@cartesia/cartesia-js') & typeof import('@cartesia/cartesia-js/resources/tts/ws');

/**
 * The SDK's CommonJS build (see the top of this file for why not its ESM one), with its socket
 * class: `new TTSWS(client)` lets an `error` listener be bound before the socket connects (with
 * `client.tts.websocket()` a refused upgrade becomes an unhandled rejection inside the SDK).
 */
export function loadCartesiaSdk(): CartesiaSdk {
  const require = createRequire(import.meta.url);
  const sdk = require('@cartesia/cartesia-js') as typeof import('@cartesia/cartesia-js');
  const ws = require('@cartesia/cartesia-js/resources/tts/ws') as typeof import('@cartesia/cartesia-js/resources/tts/ws');
  return { ...sdk, ...ws };
}

type Socket = Awaited<ReturnType<Cartesia['tts']['websocket']>>;
type Context = ReturnType<Socket['context']>;

const CARTESIA_RATES = [8000, 16000, 22050, 24000, 44100, 48000] as const;
type CartesiaRate = (typeof CARTESIA_RATES)[number];
const CLOSED = 2; // WebSocket CLOSING; CLOSED is 3

export function cartesiaTts(opts: CartesiaTtsOptions): TtsProvider {
  const rate: CartesiaRate = CARTESIA_RATES.find((r) => r === opts.sampleRate) ?? 16000;
  let sdk: Promise<CartesiaSdk> | undefined;
  let socket: Promise<Socket> | undefined;
  const load = () => (sdk ??= Promise.resolve().then(loadCartesiaSdk));
  const connect = async (): Promise<Socket> => {
    const current = await socket?.catch(() => undefined);
    if (current && current.socket.readyState < CLOSED) return current;
    const { Cartesia, TTSWS } = await load();
    const client = new Cartesia({ apiKey: opts.apiKey, ...(opts.baseUrl ? { baseURL: opts.baseUrl } : {}), maxRetries: 0 });
    const ws = new TTSWS(client, opts.ca ? { ca: opts.ca } : undefined);
    // The SDK turns an error nobody listens to into an unhandled rejection: listen first.
    ws.on('error', () => undefined);
    socket = ws.connect();
    return socket.catch((err: unknown) => {
      socket = undefined;
      throw vendorError('Cartesia', err);
    });
  };

  const openTurn = (turnOpts: TurnOptions = {}): TtsTurn => {
    const out = new EventQueue<TtsTurnEvent>();
    const ready = connect().then((ws) => ({ ws, ctx: contextOf(ws, opts, rate) }));
    ready.catch((err: unknown) => out.fail(err));
    let ended = false;
    let cancelled = false;
    const send = (fn: (c: Context) => Promise<void>) =>
      void ready.then(({ ctx }) => (cancelled ? undefined : fn(ctx))).catch((err: unknown) => out.fail(vendorError('Cartesia', err)));
    const cancel = () => {
      if (cancelled || out.isClosed) return;
      cancelled = true;
      out.close();
      void ready.then(({ ctx }) => ctx.cancel()).catch(() => undefined);
    };
    turnOpts.signal?.addEventListener('abort', cancel, { once: true });
    void ready.then(({ ws, ctx }) => pump(ws, ctx, out, opts.sampleRate, rate)).catch(() => undefined);
    return {
      push: (text) => {
        if (!ended && !cancelled && text.trim()) send((c) => c.push({ transcript: `${text.trim()} ` }));
      },
      end: () => {
        if (ended) return;
        ended = true;
        send((c) => c.no_more_inputs());
      },
      cancel,
      [Symbol.asyncIterator]: () => out[Symbol.asyncIterator](),
    };
  };
  return {
    name: 'cartesia',
    openTurn,
    synthesize: (text, signal) => collect(openTurn, text, signal),
    synthesizeStream: (text, signal) => audioOf(openTurn, text, signal),
    warm: async () => {
      await load();
    },
    close: () => void socket?.then((ws) => ws.close()).catch(() => undefined),
  };
}

function contextOf(ws: Socket, opts: CartesiaTtsOptions, rate: CartesiaRate): Context {
  return ws.context({
    model_id: opts.model ?? 'sonic-3',
    voice: { mode: 'id', id: opts.voice },
    output_format: { container: 'raw', encoding: 'pcm_s16le', sample_rate: rate },
    add_timestamps: true,
    use_normalized_timestamps: false,
  });
}

/** The context's events into the turn's queue; a socket closed mid-turn fails the turn. */
async function pump(ws: Socket, ctx: Context, out: EventQueue<TtsTurnEvent>, callRate: number, rate: number): Promise<void> {
  const onClose = () => out.fail(new TtsError('Cartesia closed the connection mid-turn', { retryable: true }));
  ws.socket.addEventListener('close', onClose);
  try {
    for await (const ev of ctx.receive()) {
      if (out.isClosed) return;
      if (ev.type === 'chunk' && ev.audio) {
        const b = Buffer.from(ev.audio);
        const pcm = new Int16Array(b.length >> 1);
        for (let i = 0; i < pcm.length; i++) pcm[i] = b.readInt16LE(i * 2);
        out.put({ type: 'audio', pcm: resample(pcm, rate, callRate), sampleRate: callRate });
      } else if (ev.type === 'timestamps' && ev.word_timestamps) {
        const t = ev.word_timestamps;
        out.put({
          type: 'words',
          words: t.words.map((word, i) => ({ word, startMs: (t.start[i] ?? 0) * 1000, endMs: (t.end[i] ?? 0) * 1000 })),
        });
      } else if (ev.type === 'error') {
        return out.fail(vendorError('Cartesia', `${ev.title}: ${ev.message}`, ev.status_code));
      } else if (ev.type === 'done') {
        return out.close();
      }
    }
    out.close();
  } catch (err) {
    out.fail(vendorError('Cartesia', err));
  } finally {
    ws.socket.removeEventListener('close', onClose);
  }
}
