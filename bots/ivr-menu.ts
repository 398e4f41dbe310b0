/**
 * "Press 1 for sales, 2 for support": a DTMF menu with retries that transfers the caller to a SIP
 * URI from the routing file (`salesUri`, `supportUri`), and says goodbye when nobody answers it.
 * Steps (funnels): welcome → main-menu (again at each retry) → transfer-sales | transfer-support | goodbye.
 */
import { defineBot, type Call } from 'patchbay/sdk';

const setting = (call: Call, key: string, fallback: string): string => {
  const v = call.config[key];
  return typeof v === 'string' && v.length > 0 ? v : fallback;
};

export default defineBot({
  name: 'ivr-menu',
  maxCallMs: 5 * 60_000,
  async onCall(call) {
    const departments: Record<string, { name: string; sipUri: string }> = {
      '1': { name: 'sales', sipUri: setting(call, 'salesUri', 'sip:sales@pbx.example.com') },
      '2': { name: 'support', sipUri: setting(call, 'supportUri', 'sip:support@pbx.example.com') },
    };
    const attempts = Number(call.config.attempts ?? 3);
    const firstDigitTimeoutMs = Number(call.config.digitTimeoutMs ?? 6_000);

    call.step('welcome');
    await call.say('Thanks for calling.');
    for (let attempt = 1; attempt <= attempts; attempt++) {
      call.step('main-menu');
      await call.say('Press 1 for sales, 2 for support.', { interruptible: true });
      const key = await call.collectDigits({ maxDigits: 1, firstDigitTimeoutMs });
      const dept = departments[key];
      if (dept) {
        call.logger.info({ key, department: dept.name }, 'menu choice');
        call.step(`transfer-${dept.name}`);
        await call.say(`Connecting you to ${dept.name}.`);
        await call.transfer({ sipUri: dept.sipUri });
        return;
      }
      if (attempt < attempts) await call.say(key ? `Sorry, ${key} is not an option.` : "Sorry, I didn't get that.");
    }
    call.step('goodbye');
    await call.say('Goodbye.');
    await call.hangup('no valid choice');
  },
});
