/** Picks the call-client implementation. The worker code is the same for both. */
import type { Logger } from 'pino';
import type { CallClient } from '../../daily/call-client.js';
import type { WorkerInit } from '../protocol.js';

export async function createCallClient(init: WorkerInit, logger: Logger): Promise<CallClient> {
  if (init.callClient === 'daily') {
    const { DailyBrowserCallClient } = await import('../../daily/browser/client.js');
    return new DailyBrowserCallClient({
      apiUrl: init.dailyApiUrl,
      logger,
      chromiumPath: init.chromiumPath,
      ...(init.dailyBundleUrl ? { bundleUrl: init.dailyBundleUrl } : {}),
      // BROWSER_LAYOUT=shared: a page in the browser the parent leased us; otherwise a browser of our own.
      ...(init.browser ? { sharedBrowser: { wsEndpoint: init.browser.wsEndpoint, browserPid: init.browser.pid } } : {}),
    });
  }
  const { EmulatorCallClient } = await import('../../emulator/client.js');
  return new EmulatorCallClient({ apiUrl: init.dailyApiUrl, logger });
}

/** What the memory watch counts for a worker (pong): its own PSS, plus its page's PSS for the daily client. */
export async function memoryReport(client: CallClient | undefined): Promise<{ pssBytes?: number; pageBytes?: number }> {
  if (client?.kind !== 'daily') return {};
  const [{ DailyBrowserCallClient }, { pssBytes }] = await Promise.all([
    import('../../daily/browser/client.js'),
    import('../../daily/browser/chromium.js'),
  ]);
  if (!(client instanceof DailyBrowserCallClient)) return {};
  const [own, pageBytes] = await Promise.all([pssBytes(process.pid), client.pageMemoryBytes()]);
  return { ...(own > 0 ? { pssBytes: own } : {}), pageBytes };
}
