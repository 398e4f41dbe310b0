/**
 * A whole replica for tests: the real emulator and the real app on 127.0.0.1 (ephemeral ports),
 * real forked workers. Nothing of ours is mocked.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../src/core/config.js';
import type { CallRecord } from '../../src/admission/dispatcher.js';
import { createEmulator } from '../../src/emulator/server.js';
import type { Emulator, EmulatorOptions } from '../../src/emulator/types.js';
import { createLogger, type Logger } from '../../src/core/logger.js';
import { createRuntime, type Runtime, type RuntimeOptions } from '../../src/app/runtime.js';

export const NUMBER = '+15550001000';

export interface Stack {
  emulator: Emulator;
  rt: Runtime;
  config: Config;
  url: string;
  secret: string;
  /** The emulator's API key (Bearer), for REST calls and CLI runs against it. */
  apiKey: string;
  /** Every call-ended record, in order. */
  ended: CallRecord[];
  /** Resolves with the ended record of our call id / Daily callId. */
  waitEnded(callId: string, timeoutMs?: number): Promise<CallRecord>;
  close(): Promise<void>;
}

export async function startStack(
  opts: { env?: Record<string, string>; emulator?: Partial<EmulatorOptions>; runtime?: RuntimeOptions; logger?: Logger } = {},
): Promise<Stack> {
  const apiKey = `test_${randomBytes(8).toString('hex')}`;
  const secret = randomBytes(32).toString('base64');
  const logger = opts.logger ?? createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'test' });
  const emulator = await createEmulator({
    host: '127.0.0.1',
    port: 0,
    apiKey,
    logger: logger.child({ component: 'emulator' }),
    ...opts.emulator,
  });
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DAILY_PINLESS_HMAC: secret,
    IDLE_WORKERS: '1',
    // The per-call path unless a test asks for warm rooms (test/warm-rooms.test.ts).
    WARM_ROOMS: '0',
    EMULATOR_NUMBERS: NUMBER,
    DIALIN_READY_TIMEOUT_MS: '4000',
    JOIN_TIMEOUT_MS: '4000',
    PINLESS_UPDATE_DEADLINE_MS: '4000',
    PINLESS_UPDATE_TIMEOUT_MS: '1000',
    WORKER_CLOSE_TIMEOUT_MS: '2000',
    WORKER_PING_INTERVAL_MS: '500',
    WORKER_PING_TIMEOUT_MS: '4000',
    // Tests share the checkout: records stay in memory unless a test points them at a file.
    CALL_RECORDS_PATH: ':memory:',
    ...opts.env,
  });
  const rt = await createRuntime(config, logger, { emulator: { instance: emulator, apiKey }, ...opts.runtime });
  const url = await rt.listen();
  const ended: CallRecord[] = [];
  const waiters = new Set<() => void>();
  rt.dispatcher.on('call-ended', (r) => {
    ended.push(r);
    for (const w of waiters) w();
  });
  return {
    emulator,
    rt,
    config,
    url,
    secret,
    apiKey,
    ended,
    waitEnded(callId, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const r = ended.find((e) => e.callId === callId || e.id === callId);
          if (r) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(r);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`call ${callId} did not end within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      // Rooms of calls that just ended are queued for deletion, paced; let them go first (tests check none is left).
      await rt.rooms.flush(10_000);
      await rt.shutdown(0);
      await emulator.close();
    },
  };
}
