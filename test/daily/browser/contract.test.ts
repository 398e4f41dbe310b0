/**
 * Contract with daily-js's PRIVATE call-machine protocol, which the stand-in
 * (src/emulator/call-machine/) speaks. If this fails after a daily-js upgrade, the stand-in may
 * silently stop working: re-read dist/daily.js (handleMessageFromCallMachine, the call-object
 * loader, sendMessageToCallMachine), fix the stand-in, then bump DAILY_JS_VERSION.
 * The live half of the contract (the real daily-js joining through the stand-in) is in
 * test/daily-browser.test.ts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DAILY_JS_VERSION, PRIVATE_PROTOCOL_MARKERS } from '../../../src/emulator/call-machine/protocol.js';

const require = createRequire(import.meta.url);
const dailyPkg = JSON.parse(readFileSync(require.resolve('@daily-co/daily-js/package.json'), 'utf8')) as { version: string };
const dailyJs = readFileSync(require.resolve('@daily-co/daily-js/dist/daily.js'), 'utf8');
const ourPkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  dependencies: Record<string, string>;
};

describe('daily-js private call-machine protocol (pinned)', () => {
  it(`daily-js is pinned to exactly ${DAILY_JS_VERSION} and that is what is installed`, () => {
    expect(ourPkg.dependencies['@daily-co/daily-js'], 'package.json must pin daily-js exactly (no ^ or ~)').toBe(DAILY_JS_VERSION);
    expect(dailyPkg.version, 'installed daily-js differs from the version the stand-in speaks').toBe(DAILY_JS_VERSION);
  });

  it('dist/daily.js still contains every protocol string the stand-in relies on', () => {
    const missing = PRIVATE_PROTOCOL_MARKERS.filter((m) => !dailyJs.includes(m));
    expect(missing, `daily-js no longer mentions: ${missing.join(', ')}`).toEqual([]);
  });

  it('the loader, registry and message shapes are unchanged', () => {
    // The loader registers the call client id before running the bundle, and reuses a loaded one with reset().
    expect(dailyJs).toMatch(/window\._daily\.pendings\.push\(/);
    expect(dailyJs).toMatch(/window\._daily\.instances\[[^\]]+\]\.callMachine\.reset\(\)/);
    expect(dailyJs).toMatch(/window\._daily\s*\|\|\s*\(window\._daily\s*=\s*\{\s*pendings:\s*\[\],\s*instances:\s*\{\}\s*\}\)/);
    // The bundle URL is <bundlePathOverride>/call-machine-object-bundle.js, versioned on Daily's CDN.
    expect(dailyJs).toContain(`"/call-machine/versioned/").concat("${DAILY_JS_VERSION}"`);
    // Messages from the machine are recognised by what/from/callClientId; callbacks by callbackStamp.
    expect(dailyJs).toMatch(/"iframe-call-message"===\w+\.data\.what/);
    expect(dailyJs).toMatch(/"module"!==\w+\.data\.from/);
    expect(dailyJs).toMatch(/\.callbackStamp&&\w+\._messageCallbacks\[/);
    // Tracks come from the store's streams: {participantId, type, pendingTrack, starttime}.
    expect(dailyJs).toMatch(/\.participantId===\w+&&\w+\.type===\w+&&\w+\.pendingTrack&&\w+\.pendingTrack\.kind===\w+/);
    // Dial-in events are passed through to app listeners as sent.
    for (const ev of ['dialin-ready', 'dialin-connected', 'dialin-error', 'dialin-stopped', 'dialin-warning', 'dtmf-event']) {
      expect(dailyJs, ev).toContain(`case"${ev}":`);
    }
    // Module → machine action names used by our client.
    for (const action of ['join-meeting', 'leave-meeting', 'send-dtmf', 'update-participant', 'app-msg', 'sip-call-transfer']) {
      expect(dailyJs, action).toContain(`"${action}"`);
    }
  });
});
