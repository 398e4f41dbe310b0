/**
 * `npm run call -- --to <number> [--from …|--withheld anonymous] [--press 1] [--say "…"] [--noise 0.3] [--hangup-after-ms N]`
 *
 * Places a simulated phone call through the emulator's control API, prints a readable
 * transcript as it happens, and exits non-zero when the call never connected.
 * `--press` and `--say` run in the order given, each after the bot has spoken. A bot that receives
 * audio (voice activity, a speech-to-text provider) hears `--say` out loud (espeak-ng), with white
 * noise mixed in at `--noise` (its RMS relative to the speech's).
 */
import { Command, Option } from 'commander';
import WebSocket from 'ws';
import { loadConfig } from '../core/config.js';
import type { CallerStep, TranscriptLine } from './types.js';
import { errorMessage } from '../core/errors.js';

const steps: CallerStep[] = [];
const addStep = (make: (v: string) => CallerStep) => (value: string) => {
  steps.push({ waitFor: 'say', timeoutMs: 15_000 }, make(value));
  return value;
};

const config = loadConfig();
const program = new Command()
  .name('npm run call --')
  .description('Place a simulated phone call through the Daily emulator and print its transcript.')
  .option('--to <number>', 'number (or SIP URI) to call', config.emulator.numbers[0])
  .option('--from <number>', 'caller id (any string, "" included)', '+15555550123')
  .addOption(
    new Option(
      '--withheld <style>',
      'call with a withheld caller id (webhook From: anonymous, Anonymous, restricted, unavailable, empty "", sip-anonymous, absent = no From)',
    ).choices(['anonymous', 'Anonymous', 'restricted', 'unavailable', 'empty', 'sip-anonymous', 'absent']),
  )
  .addOption(
    new Option('--press <digits>', 'press DTMF digits after the bot speaks (repeatable)').argParser(addStep((d) => ({ press: d }))),
  )
  .addOption(new Option('--say <text>', 'say something after the bot speaks (repeatable)').argParser(addStep((t) => ({ say: t }))))
  .option('--noise <level>', 'white noise mixed into --say speech, RMS relative to the speech (0.3 ≈ 10 dB SNR)', (v) =>
    Number.parseFloat(v),
  )
  .option('--header <name=value...>', 'SIP headers sent with the call')
  .option('--hangup-after-ms <ms>', 'hang up this long after the steps', (v) => Number.parseInt(v, 10))
  .option('--timeout-ms <ms>', 'hang up if the call is still going after this long', (v) => Number.parseInt(v, 10), 60_000)
  .option(
    '--emulator <url>',
    'emulator origin',
    `http://${config.emulator.host === '0.0.0.0' ? '127.0.0.1' : config.emulator.host}:${config.emulator.port}`,
  )
  .option('--json', 'print the final transcript as JSON')
  .showHelpAfterError();

program.parse();
const opts = program.opts<{
  to: string;
  from: string;
  withheld?: string;
  header?: string[];
  noise?: number;
  hangupAfterMs?: number;
  timeoutMs: number;
  emulator: string;
  json?: boolean;
}>();

if (opts.noise !== undefined && !(opts.noise >= 0 && opts.noise <= 4)) program.error('--noise must be a number from 0 to 4');
const script: CallerStep[] = steps.map((s) => ('say' in s && opts.noise ? { ...s, noise: opts.noise } : s));
if (opts.hangupAfterMs !== undefined) script.push({ wait: opts.hangupAfterMs }, { hangup: true });

const sipHeaders: Record<string, string> = {};
for (const h of opts.header ?? []) {
  const i = h.indexOf('=');
  if (i > 0) sipHeaders[h.slice(0, i)] = h.slice(i + 1);
}

function fmt(line: TranscriptLine): string {
  const t = `${(line.atMs / 1000).toFixed(2).padStart(6)}s`;
  const who = line.who === 'bot' ? 'bot   ' : line.who === 'caller' ? 'caller' : '  ·   ';
  return `[${t}] ${who} ${line.text}`;
}

async function main(): Promise<number> {
  let res: Response;
  try {
    res = await fetch(`${opts.emulator}/_emulator/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        to: opts.to,
        ...(opts.withheld ? { withheld: opts.withheld } : { from: opts.from }),
        script,
        ...(Object.keys(sipHeaders).length ? { sipHeaders } : {}),
      }),
    });
  } catch (err) {
    console.error(`Cannot reach the emulator at ${opts.emulator} (${errorMessage(err)}). Is the service running (npm start)?`);
    return 2;
  }
  const placed = (await res.json().catch(() => ({}))) as { id?: string; callId?: string; error?: string; info?: string };
  if (!res.ok || !placed.id) {
    console.error(`The emulator refused the call: ${res.status} ${placed.error ?? ''} ${placed.info ?? ''}`);
    return 2;
  }
  console.log(`Calling ${opts.to} from ${opts.withheld ? `a withheld number (${opts.withheld})` : opts.from} (call ${placed.callId})`);

  const wsUrl = `${opts.emulator.replace(/^http/, 'ws')}/_emulator/calls/${encodeURIComponent(placed.id)}/events`;
  const transcript: TranscriptLine[] = [];
  let connected = false;
  const reason = await new Promise<string>((resolve) => {
    const ws = new WebSocket(wsUrl);
    const timer = setTimeout(() => {
      console.log(`… still going after ${opts.timeoutMs} ms: hanging up`);
      void fetch(`${opts.emulator}/_emulator/calls/${encodeURIComponent(placed.id!)}/actions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ hangup: true }),
      }).catch(() => undefined);
    }, opts.timeoutMs);
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { type: string; state?: string; line?: TranscriptLine; reason?: string };
      if (m.type === 'transcript' && m.line) {
        transcript.push(m.line);
        if (!opts.json) console.log(fmt(m.line));
      } else if (m.type === 'state' && m.state === 'connected') {
        connected = true;
      } else if (m.type === 'ended') {
        clearTimeout(timer);
        resolve(m.reason ?? 'ended');
        ws.close();
      }
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      resolve(`event stream failed: ${err.message}`);
    });
  });
  // The stream may have joined after the caller was connected: the call's record says for sure.
  const final = (await fetch(`${opts.emulator}/_emulator/calls/${encodeURIComponent(placed.id)}`)
    .then((r) => r.json())
    .catch(() => ({}))) as { sessionId?: string };
  connected ||= typeof final.sessionId === 'string';
  if (opts.json) console.log(JSON.stringify({ callId: placed.callId, connected, reason, transcript }, null, 2));
  else console.log(`Call ended: ${reason}${connected ? '' : ' (never connected)'}`);
  return connected ? 0 : 1;
}

process.exitCode = await main();
