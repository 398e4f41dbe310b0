import { describe, expect, it } from 'vitest';
import greeter from '../../bots/greeter.js';
import { runBotTest } from '../../src/testing/index.js';

describe('greeter bot', () => {
  it('greets the caller with the number they called, then hangs up', async () => {
    const r = await runBotTest(greeter, {
      to: '+15550001001',
      caller: [
        { waitFor: 'say', match: /you called 1 5 5 5 0 0 0 1 0 0 1/ },
        { waitFor: 'say', match: /goodbye/ },
      ],
    });
    expect(r.outcome).toBe('completed');
    expect(r.said).toEqual(['Hello! You called 1 5 5 5 0 0 0 1 0 0 1.', 'Goodbye.']);
    expect(r.hangup).toBe('greeted');
    expect(r.callerEnd).toBe('ejected');
  }, 30_000);
});
