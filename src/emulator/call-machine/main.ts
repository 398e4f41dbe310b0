/**
 * Runs the call-machine stand-in in bridge mode, standalone, so the whole service can use the
 * real daily-js in Chromium offline against the embedded emulator:
 *
 *   npx tsx src/emulator/call-machine/main.ts --port 7862
 *   CALL_CLIENT=daily DAILY_BUNDLE_URL=http://127.0.0.1:7862/call-machine npm start
 *   npm run call -- --to +15550001000 --press 4 --hangup-after-ms 2000
 *
 * Arguments only (this is a dev tool; the service reads its environment in src/core/config.ts).
 */
import { Command } from 'commander';
import { CallMachineStandIn } from './stand-in.js';

const program = new Command()
  .name('call-machine stand-in')
  .description("Serve a stand-in for Daily's call-machine bundle that relays daily-js to the local emulator.")
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <port>', 'listen port (0: any)', (v) => Number.parseInt(v, 10), 7862)
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ host: string; port: number }>();

const standIn = await CallMachineStandIn.start({ bridge: 'emulator', host: opts.host, port: opts.port });
console.log(`call-machine stand-in (bridge to the emulator): DAILY_BUNDLE_URL=${standIn.bundleUrl}`);
const stop = (): void => {
  void standIn.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
