/** Picks the call-client implementation. The worker code is the same for both. */
import type { Logger } from 'pino';
import type { CallClient } from '../daily/call-client.js';
import type { WorkerInit } from '../ipc/protocol.js';

export async function createCallClient(init: WorkerInit, logger: Logger): Promise<CallClient> {
  if (init.callClient === 'daily') {
    const { DailyBrowserCallClient } = await import('../daily/browser/client.js');
    return new DailyBrowserCallClient({
      apiUrl: init.dailyApiUrl,
      logger,
      chromiumPath: init.chromiumPath,
      ...(init.dailyBundleUrl ? { bundleUrl: init.dailyBundleUrl } : {}),
    });
  }
  const { EmulatorCallClient } = await import('../emulator/client.js');
  return new EmulatorCallClient({ apiUrl: init.dailyApiUrl, logger });
}
