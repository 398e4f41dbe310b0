// patchbay canary comparison (funnel page): GET /analytics/canary for a stable bot and its canary
// over the funnel form's time range; the outcome table, the steps, and the tests' plain statements.
// No build step, no dependencies; everything goes in with textContent.
import { $, el } from './dom.js';

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? '';
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const fmtP = (p) => (p < 0.001 ? '< 0.001' : p.toFixed(3));
const toIso = (v) => (v ? new Date(v).toISOString() : '');

function draw(body) {
  $('c-h-stable').textContent = body.stable.bot;
  $('c-h-canary').textContent = `${body.canary.bot} (canary)`;
  const verdict = $('c-verdict');
  verdict.textContent =
    body.outcomes?.statement ??
    `Not enough calls to compare: ${body.stable.calls} on ${body.stable.bot}, ${body.canary.calls} on ${body.canary.bot}.`;
  verdict.dataset.significant = String(body.outcomes?.significant ?? false);
  const outcomes = [...new Set([...Object.keys(body.stable.outcomes), ...Object.keys(body.canary.outcomes)])];
  const share = (side, o) => (side.calls > 0 ? (side.outcomes[o] ?? 0) / side.calls : 0);
  $('c-outcomes')
    .querySelector('tbody')
    .replaceChildren(
      ...outcomes.map((o) =>
        el(
          'tr',
          { 'data-outcome': o },
          el('td', { text: o }),
          el('td', { class: 'num', text: String(body.stable.outcomes[o] ?? 0) }),
          el('td', { class: 'num', text: pct(share(body.stable, o)) }),
          el('td', { class: 'num', text: String(body.canary.outcomes[o] ?? 0) }),
          el('td', { class: 'num', text: pct(share(body.canary, o)) }),
        ),
      ),
      el(
        'tr',
        { class: 'total' },
        el('td', { text: 'calls' }),
        el('td', { class: 'num', text: String(body.stable.calls) }),
        el('td', { class: 'num', text: '' }),
        el('td', { class: 'num', text: String(body.canary.calls) }),
        el('td', { class: 'num', text: '' }),
      ),
    );
  $('c-steps')
    .querySelector('tbody')
    .replaceChildren(
      ...body.steps.map((s) =>
        el(
          'tr',
          { 'data-step': s.step },
          el('td', { text: s.step }),
          el('td', { class: 'num', text: `${s.stable.reached} · ${pct(s.stable.share)}` }),
          el('td', { class: 'num', text: `${s.canary.reached} · ${pct(s.canary.share)}` }),
          el('td', { class: 'num', text: s.z ? fmtP(s.z.p) : '–' }),
          el('td', { text: s.z ? (s.z.significant ? 'yes' : 'no') + (s.z.approximate ? ' (few calls)' : '') : '–' }),
        ),
      ),
    );
  $('canary-section').hidden = false;
  document.body.dataset.canaryLoaded = 'true';
}

async function compare() {
  const q = new URLSearchParams({ bot: $('c-bot').value.trim(), canary: $('c-canary').value.trim() });
  if ($('f-from').value) q.set('from', toIso($('f-from').value));
  if ($('f-to').value) q.set('to', toIso($('f-to').value));
  const status = $('c-status');
  status.textContent = 'loading…';
  const res = await fetch(`/analytics/canary?${q}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: 'no-store' });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    status.textContent = `${res.status}: ${body.message ?? 'failed'}`;
    $('canary-section').hidden = true;
    return;
  }
  status.textContent = `${body.outcomes?.test ?? 'chi-square test of homogeneity'} on outcomes, two-proportion z-test per step, α = ${body.alpha}`;
  draw(body);
}

$('c-bot').value = params.get('bot') ?? '';
$('c-canary').value = params.get('canary') ?? '';
$('canary-form').addEventListener('submit', (e) => {
  e.preventDefault();
  compare().catch((err) => ($('c-status').textContent = String(err)));
});
if ($('c-bot').value && $('c-canary').value) compare().catch((err) => ($('c-status').textContent = String(err)));
