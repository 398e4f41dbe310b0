// patchbay funnels: GET /analytics/funnel for a bot (and version) over a time range, drawn as one
// bar per step (calls that reached it, the part that ended there coloured by outcome) and a table
// of the steps. No build step, no dependencies; everything goes in with textContent.
import { $, el } from './dom.js';

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? '';
const auth = () => (token ? { authorization: `Bearer ${token}` } : {});

function fmtMs(ms) {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}
const pct = (n, of) => (of > 0 ? `${Math.round((100 * n) / of)}%` : '–');
const outcomeClass = (o) => (o === 'completed' || o === 'caller_hangup' ? `out-${o}` : 'out-other');
const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
/** A datetime-local value (local time) ↔ ISO 8601. */
const toIso = (v) => (v ? new Date(v).toISOString() : '');
const toLocal = (iso) => {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

function drawFunnel(steps) {
  const top = Math.max(1, ...steps.map((s) => s.reached));
  $('funnel').replaceChildren(
    ...steps.map((s) => {
      // The calls that ended at this step: the right-hand part of its bar, split by outcome.
      const ended = el('div', { class: 'ended' });
      const endedHere = sum(s.last);
      for (const [outcome, n] of Object.entries(s.last).sort((a, b) => b[1] - a[1])) {
        const part = el('div', { class: outcomeClass(outcome), title: `${n} ended here: ${outcome}` });
        part.style.width = `${(100 * n) / endedHere}%`;
        ended.append(part);
      }
      ended.style.width = `${(100 * endedHere) / s.reached}%`;
      const reach = el('div', { class: 'reach', title: `${s.reached} calls reached ${s.step}` }, ended);
      reach.style.width = `${(100 * s.reached) / top}%`;
      return el(
        'li',
        { 'data-step': s.step },
        el('span', { class: 'name', text: s.step, title: s.step }),
        el('div', { class: 'track' }, reach),
        el('span', { class: 'figures', text: `${s.reached} · ${pct(s.reached, top)}` }),
      );
    }),
  );
  $('f-legend').replaceChildren(
    ...[
      ['reach', 'reached the step'],
      ['out-completed', 'ended here: completed'],
      ['out-caller_hangup', 'ended here: caller hung up'],
      ['out-other', 'ended here: other outcome'],
    ].map(([cls, text]) => el('span', { class: 'key' }, el('span', { class: `swatch ${cls}` }), el('span', { text }))),
  );
}

function drawTable(steps) {
  const top = Math.max(1, ...steps.map((s) => s.reached));
  $('steps')
    .querySelector('tbody')
    .replaceChildren(
      ...steps.map((s) =>
        el(
          'tr',
          { 'data-step': s.step },
          el('td', { text: s.step }),
          el('td', { class: 'num', text: String(s.reached) }),
          el('td', { class: 'num', text: pct(s.reached, top) }),
          el('td', { class: 'num', text: fmtMs(s.medianMs) }),
          el('td', { class: 'num', text: String(sum(s.last)) }),
          el('td', { class: 'num', text: String(s.hangups) }),
          el('td', { class: 'num', text: String(s.transfers) }),
          el(
            'td',
            { class: 'outcomes' },
            ...Object.entries(s.last)
              .sort((a, b) => b[1] - a[1])
              .map(([o, n]) => el('span', { class: `pill ${o === 'completed' ? 'ok' : 'bad'}`, text: `${o} ${n}` })),
          ),
        ),
      ),
    );
}

async function show() {
  const bot = $('f-bot').value.trim();
  if (!bot) return;
  const q = new URLSearchParams({ bot });
  const version = $('f-version').value.trim();
  if (version) q.set('version', version);
  if ($('f-from').value) q.set('from', toIso($('f-from').value));
  if ($('f-to').value) q.set('to', toIso($('f-to').value));
  const status = $('f-status');
  status.textContent = 'loading…';
  const res = await fetch(`/analytics/funnel?${q}`, { headers: auth(), cache: 'no-store' });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    status.textContent = `${res.status}: ${body.message ?? 'failed'}`;
    $('funnel-section').hidden = true;
    return;
  }
  status.textContent = '';
  const page = new URLSearchParams(q);
  if (token) page.set('token', token);
  history.replaceState(null, '', `?${page}`);
  $('f-title').textContent = `${body.bot}${body.version ? ` · ${body.version}` : ' · all versions'}`;
  $('f-calls').textContent = String(Math.max(0, ...body.steps.map((s) => s.reached)));
  $('funnel-section').hidden = body.steps.length === 0;
  $('funnel-empty').hidden = body.steps.length > 0;
  document.body.dataset.loaded = 'true';
  drawFunnel(body.steps);
  drawTable(body.steps);
}

$('live-link').href = token ? `/dashboard?token=${encodeURIComponent(token)}` : '/dashboard';
$('f-bot').value = params.get('bot') ?? '';
$('f-version').value = params.get('version') ?? '';
if (params.get('from')) $('f-from').value = toLocal(params.get('from'));
if (params.get('to')) $('f-to').value = toLocal(params.get('to'));
$('funnel-form').addEventListener('submit', (e) => {
  e.preventDefault();
  show().catch((err) => ($('f-status').textContent = String(err)));
});
if ($('f-bot').value) show().catch((err) => ($('f-status').textContent = String(err)));
