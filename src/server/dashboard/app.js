// patchbay live dashboard. No build step, no dependencies: served as is from src/server/dashboard/.
// Data arrives over /ws/events (hello snapshot, then call / ended / stats) and, for older or
// filtered records, from GET /calls; a clicked call's timeline and event log from GET /calls/:id
// (polled while the call is live). Everything is put in the page with textContent (no HTML).
// The recording player beside the conversation: playback.js.
import { $, el } from './dom.js';
import { closeRecording, setupPlayback, showRecording } from './playback.js';

import { turnBars, turnLegend } from './turns.js';

const token = new URLSearchParams(location.search).get('token') ?? '';
document.getElementById('funnel-link').href = `/dashboard/funnel${token ? `?token=${encodeURIComponent(token)}` : ''}`;

/** Stages in the order a call goes through them; each bar segment is named by the stage it ends at. */
const STAGES = [
  ['received', 'webhook'],
  ['room_created', 'room'],
  ['queued', 'queue'],
  ['worker_assigned', 'worker'],
  ['joined', 'join'],
  ['dialin_ready', 'dial-in ready'],
  ['forward_sent', 'forward'],
  ['forwarded', 'forwarded'],
  ['connected', 'connect'],
  ['bot_started', 'bot'],
  ['caller_left', 'caller left'],
  ['ended', 'end'],
];
const STAGE_INDEX = new Map(STAGES.map(([s], i) => [s, i]));
/** Outcomes shown as good; the server sends the list (src/core/outcome.ts GOOD_OUTCOMES) in its hello. */
let GOOD = new Set(['completed', 'caller_hangup']);

let clockOffsetMs = 0; // server time − browser time
const now = () => Date.now() + clockOffsetMs;
const live = new Map(); // id → view
let recent = []; // views, newest first
let recordsOn = false;
let filter = '';
let nextBefore = null;
/** The search form's values (number: last digits; from/to: epoch ms), applied with the outcome filter. */
const search = { number: '', bot: '', from: null, to: null };
let selected = null; // id of the call shown in the detail view
let detailTimer = null;
const auth = () => (token ? { authorization: `Bearer ${token}` } : {});

function fmtMs(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}
const fmtTime = (ms) => new Date(ms - clockOffsetMs).toLocaleTimeString();

/** The timeline as segments between the stages reached, in stage order. */
function segments(timeline, endMs) {
  const points = Object.entries(timeline)
    .filter(([s, t]) => STAGE_INDEX.has(s) && Number.isFinite(t))
    .sort((a, b) => a[1] - b[1] || STAGE_INDEX.get(a[0]) - STAGE_INDEX.get(b[0]));
  const segs = [];
  for (let i = 1; i < points.length; i++) segs.push({ stage: points[i][0], ms: points[i][1] - points[i - 1][1] });
  const last = points.at(-1);
  if (endMs !== undefined && last && last[0] !== 'ended') segs.push({ stage: 'running', ms: Math.max(0, endMs - last[1]) });
  return segs;
}

function bar(timeline, endMs) {
  const segs = segments(timeline, endMs);
  const total = segs.reduce((a, s) => a + s.ms, 0);
  const wrap = el('div', { class: 'bar' });
  wrap.title = segs.map((s) => `${label(s.stage)}: ${fmtMs(s.ms)}`).join('\n') || 'no stages yet';
  for (const s of segs) {
    const part = el('span', { class: `seg seg-${s.stage}`, 'data-stage': s.stage });
    // Tiny segments stay visible.
    part.style.flexGrow = String(total > 0 ? Math.max(s.ms / total, 0.01) : 1);
    wrap.append(part);
  }
  return wrap;
}

const label = (stage) => (stage === 'running' ? 'now' : (STAGES.find(([s]) => s === stage)?.[1] ?? stage));

function renderStats(s) {
  $('stat-active').textContent = s.active;
  $('stat-queued').textContent = s.queued;
  $('stat-admitting').textContent = s.admitting;
  $('stat-idle').textContent = s.workers.idle;
  $('stat-starting').textContent = s.workers.starting;
  $('stat-busy').textContent = s.workers.busy;
  $('stat-warm').textContent = s.workers.warmStarts;
  $('stat-cold').textContent = s.workers.coldStarts;
  $('drain-tile').hidden = !s.draining;
}

function liveRow(v) {
  const t = now();
  const received = v.timeline.received ?? t;
  const stageAt = v.timeline[v.stage] ?? received;
  return el(
    'tr',
    { 'data-call-id': v.callId, 'data-id': v.id, 'data-stage': v.stage, 'data-state': v.state, class: v.id === selected ? 'selected' : '' },
    el('td', { class: 'mono', text: v.from }),
    el('td', { text: v.bot }),
    el('td', {}, el('span', { class: `pill state-${v.state}`, text: v.state })),
    el('td', { class: 'stage', text: label(v.stage) }),
    el('td', { class: 'num', text: fmtMs(t - stageAt) }),
    el('td', { class: 'num', text: fmtMs(t - received) }),
    el('td', { class: 'bar-col' }, bar(v.timeline, t)),
  );
}

function recentRow(v) {
  const t = v.timeline;
  const dur = t.ended !== undefined && t.received !== undefined ? t.ended - t.received : null;
  return el(
    'tr',
    { 'data-call-id': v.callId, 'data-id': v.id, 'data-outcome': v.outcome ?? '', class: v.id === selected ? 'selected' : '' },
    el('td', { class: 'mono', text: t.ended ? fmtTime(t.ended) : '–' }),
    el('td', { class: 'mono', text: v.from }),
    el('td', { text: v.bot }),
    el(
      'td',
      {},
      el('span', { class: `pill ${GOOD.has(v.outcome) ? 'ok' : 'bad'}`, text: v.outcome ?? '?' }),
      // Recorded calls: a badge; the call detail plays them (playback.js).
      ...(v.recording
        ? [el('span', { class: 'pill rec', text: 'rec', title: `recording: ${v.recording.mode ?? ''} ${v.recording.state}` })]
        : []),
    ),
    el('td', { class: 'num', text: fmtMs(dur) }),
    el('td', { class: 'bar-col' }, bar(t)),
    el('td', { class: 'detail', text: v.detail ?? '', title: v.detail ?? '' }),
  );
}

function renderLive() {
  const rows = [...live.values()].sort((a, b) => (a.timeline.received ?? 0) - (b.timeline.received ?? 0)).map(liveRow);
  $('live').tBodies[0].replaceChildren(...rows);
  $('live-count').textContent = String(rows.length);
  $('live-empty').hidden = rows.length > 0;
}

function renderRecent() {
  const shown = recent.filter(matches);
  $('recent').tBodies[0].replaceChildren(...shown.map(recentRow));
  $('recent-empty').hidden = shown.length > 0;
  $('older').hidden = !recordsOn || nextBefore === null;
}

const fromStored = (c) => ({
  id: c.id,
  callId: c.callId,
  from: c.from,
  to: c.to,
  bot: c.bot,
  state: 'ended',
  stage: 'ended',
  timeline: c.timeline,
  outcome: c.outcome,
  detail: c.detail,
  ...(c.recording && c.recording.state !== 'off' ? { recording: { state: c.recording.state, mode: c.recording.mode } } : {}),
});

/** Does a call (a view) match the outcome filter and the search? Masked numbers keep their last 4 digits. */
function matches(v) {
  if (filter && v.outcome !== filter) return false;
  if (search.bot && v.bot !== search.bot) return false;
  const at = v.timeline.received;
  if (search.from !== null && !(at >= search.from)) return false;
  if (search.to !== null && !(at < search.to)) return false;
  if (search.number) {
    const want = search.number.slice(-4);
    if (![v.from, v.to].some((n) => (n ?? '').replace(/\D/g, '').endsWith(want))) return false;
  }
  return true;
}

function queryParams() {
  const q = new URLSearchParams();
  if (filter) q.set('outcome', filter);
  if (search.number) q.set('number', search.number);
  if (search.bot) q.set('bot', search.bot);
  if (search.from !== null) q.set('from', new Date(search.from).toISOString());
  if (search.to !== null) q.set('to', new Date(search.to).toISOString());
  return q;
}

async function loadRecords(append) {
  const q = queryParams();
  q.set('limit', '50');
  if (append && nextBefore !== null) q.set('cursor', String(nextBefore));
  const res = await fetch(`/calls?${q}`, { headers: auth(), cache: 'no-store' });
  if (!res.ok) throw new Error(`GET /calls: ${res.status}`);
  const body = await res.json();
  const views = body.calls.map(fromStored);
  recent = append ? recent.concat(views) : views;
  nextBefore = body.nextCursor ?? null;
  renderRecent();
}

/** Downloads the current filter as CSV or JSON (fetched with the token header, saved from a blob). */
async function exportRecords(format) {
  const q = queryParams();
  q.set('format', format);
  const res = await fetch(`/calls?${q}`, { headers: auth(), cache: 'no-store' });
  if (!res.ok) throw new Error(`export: ${res.status}`);
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `calls.${format}`;
  const url = URL.createObjectURL(await res.blob());
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// --- call detail ---------------------------------------------------------------------------------

/** How each kind of event shows in the conversation: side, who, text. */
function bubble(e) {
  switch (e.kind) {
    case 'say':
      return ['bot', 'bot', e.value];
    case 'play':
      return ['bot', 'bot (audio)', e.value];
    case 'transcript':
      return ['caller', 'caller', e.value];
    case 'digits':
      return ['caller', 'caller pressed', e.value];
    case 'transfer':
      return ['system', '', `transfer to ${e.value}`];
    case 'transfer_result':
      return ['system', '', `transfer: ${e.value}`];
    case 'step':
      return ['system', '', `step: ${e.value}`];
    case 'recording':
      return ['system', '', `recording ${e.value}`];
    case 'hangup':
      return ['system', '', `bot hung up${e.value ? `: ${e.value}` : ''}`];
    case 'dialin_error':
    case 'error':
      return ['error', e.kind.replace('_', ' '), e.value];
    case 'dialin_warning':
    case 'warning':
      return ['warning', e.kind.replace('_', ' '), e.value];
    default:
      return ['system', e.kind, e.value];
  }
}

function renderDetail(c, isLive) {
  const panel = $('detail');
  panel.hidden = false;
  panel.dataset.id = c.id;
  panel.dataset.live = String(isLive);
  $('detail-title').textContent = `Call ${c.from || '(no number)'} → ${c.bot}`;
  const status = $('detail-status');
  status.textContent = isLive ? `live · ${c.state}` : (c.outcome ?? c.state);
  status.className = `pill ${isLive ? 'state-active' : GOOD.has(c.outcome) ? 'ok' : 'bad'}`;
  const t0 = c.timeline.received ?? c.receivedAtMs;
  const facts = [
    ['caller', c.from],
    ['called', c.to],
    ['bot', c.bot],
    ['version', c.botVersion ?? '–'],
    ['state', c.state],
    ['outcome', c.outcome ?? '–'],
    ['received', new Date(c.receivedAtMs).toLocaleString()],
    ['duration', fmtMs(c.durationMs)],
    ['worker', c.warmStart === null ? '–' : `${c.warmStart ? 'warm' : 'cold'}${c.workerPid ? ` · pid ${c.workerPid}` : ''}`],
    ['replica', c.replicaId || '–'],
    ['trace', c.traceId ?? '–'],
    ['Daily call', c.callId],
    ['id', c.id],
    ['detail', c.detail ?? '–'],
  ];
  $('detail-facts').replaceChildren(
    ...facts.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: String(v), title: String(v) }))),
  );
  const stages = Object.entries(c.timeline)
    .filter(([, t]) => Number.isFinite(t))
    .sort((a, b) => a[1] - b[1]);
  $('detail-timeline').replaceChildren(
    ...stages.map(([s, t]) =>
      el(
        'li',
        { 'data-stage': s },
        el('span', { class: `swatch seg-${s}` }),
        el('span', { text: label(s) }),
        el('span', { class: 'at', text: `+${fmtMs(t - t0)}` }),
      ),
    ),
  );
  const turns = turnBars(c.events, t0, el);
  $('detail-turns').replaceChildren(...turns);
  $('detail-turns-legend').replaceChildren(...turnLegend(c.events, el));
  $('detail-turns-wrap').hidden = turns.length === 0;
  const list = $('detail-events');
  const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.replaceChildren(
    ...c.events
      .filter((e) => e.kind !== 'turn_latency')
      .map((e) => {
        const [side, who, text] = bubble(e);
        const li = el('li', { class: `msg ${side}`, 'data-kind': e.kind, 'data-at-ms': String(e.atMs), title: `+${fmtMs(e.atMs - t0)}` });
        if (who) li.append(el('span', { class: 'who', text: `${who} · +${fmtMs(e.atMs - t0)}` }));
        li.append(el('span', { class: 'text', text }));
        return li;
      }),
  );
  if (stick) list.scrollTop = list.scrollHeight;
  $('detail-events-empty').hidden = c.events.length > 0;
  for (const tr of document.querySelectorAll('tr.selected')) tr.classList.remove('selected');
  for (const tr of document.querySelectorAll(`tr[data-id="${CSS.escape(c.id)}"]`)) tr.classList.add('selected');
  showRecording(c, isLive).catch((err) => console.warn(err));
}

/** Looks at the selected call again every second (live, not written yet, or a failed look). */
function pollDetail() {
  clearInterval(detailTimer);
  detailTimer = setInterval(() => refreshDetail().catch(() => undefined), 1_000);
}

async function refreshDetail() {
  const id = selected;
  if (!id) return;
  let res;
  try {
    res = await fetch(`/calls/${encodeURIComponent(id)}`, { headers: auth(), cache: 'no-store' });
  } catch (err) {
    // The service did not answer (restarting, overloaded): keep looking while the call is selected.
    if (id === selected) pollDetail();
    throw err;
  }
  if (id !== selected) return;
  if (res.status === 404 && live.has(id)) {
    // Admitted a moment ago: not written yet. Look again shortly.
    pollDetail();
    return;
  }
  if (!res.ok) {
    // A 5xx or 429 passes; a 404 for a call that is not live is final.
    if (res.status !== 404) pollDetail();
    throw new Error(`GET /calls/${id}: ${res.status}`);
  }
  const body = await res.json();
  renderDetail(body.call, body.live);
  clearInterval(detailTimer);
  detailTimer = null;
  if (body.live) pollDetail();
}

function openDetail(id) {
  selected = id;
  refreshDetail().catch((err) => console.warn(err));
}

function closeDetail() {
  selected = null;
  clearInterval(detailTimer);
  detailTimer = null;
  $('detail').hidden = true;
  closeRecording();
  for (const tr of document.querySelectorAll('tr.selected')) tr.classList.remove('selected');
}

/** The outcome filter's choices and the good ones, as the server knows them (once per page). */
function setOutcomes(outcomes, good) {
  if (Array.isArray(good)) GOOD = new Set(good);
  const select = $('outcome-filter');
  if (!Array.isArray(outcomes) || select.options.length > 1) return;
  for (const o of outcomes) select.append(el('option', { value: o, text: o }));
}

function onMessage(m) {
  if (typeof m.nowMs === 'number') clockOffsetMs = m.nowMs - Date.now();
  switch (m.type) {
    case 'hello':
      $('version').textContent = `v${m.version}`;
      setOutcomes(m.outcomes, m.goodOutcomes);
      $('stat-max').textContent = m.maxConcurrentBots;
      recordsOn = m.records;
      renderStats(m.stats);
      live.clear();
      for (const v of m.live) live.set(v.id, v);
      // The snapshot's recent calls now; with records on, the stored page (filtered, pageable) replaces it.
      if (!filter) recent = m.recent;
      nextBefore = null;
      if (recordsOn) loadRecords(false).catch(() => undefined);
      renderLive();
      renderRecent();
      break;
    case 'call':
      if (m.call.state === 'ended' || recent.some((v) => v.id === m.call.id)) break;
      live.set(m.call.id, m.call);
      renderLive();
      if (m.call.id === selected) refreshDetail().catch(() => undefined);
      break;
    case 'ended':
      live.delete(m.call.id);
      recent = [m.call, ...recent.filter((v) => v.id !== m.call.id)].slice(0, 500);
      renderLive();
      renderRecent();
      // Once more after the end: the record is closed by then (or a moment later).
      if (m.call.id === selected) setTimeout(() => refreshDetail().catch(() => undefined), 300);
      break;
    case 'stats':
      renderStats(m);
      break;
  }
}

let retryMs = 500;
function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const q = token ? `?token=${encodeURIComponent(token)}` : '';
  const ws = new WebSocket(`${proto}//${location.host}/ws/events${q}`);
  const conn = $('conn');
  ws.onopen = () => {
    retryMs = 500;
    conn.dataset.state = 'open';
    conn.textContent = 'live';
  };
  ws.onmessage = (e) => {
    try {
      onMessage(JSON.parse(e.data));
    } catch (err) {
      console.error('bad message', err);
    }
  };
  ws.onclose = () => {
    conn.dataset.state = 'closed';
    conn.textContent = `disconnected, retrying in ${fmtMs(retryMs)}`;
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10_000);
  };
}

function setup() {
  const select = $('outcome-filter');
  select.addEventListener('change', () => {
    filter = select.value;
    if (recordsOn) loadRecords(false).catch(() => renderRecent());
    else renderRecent();
  });
  $('older').addEventListener('click', () => loadRecords(true).catch(() => undefined));
  const form = $('search');
  const readSearch = () => {
    const time = (id) => {
      const v = $(id).value;
      const ms = v ? new Date(v).getTime() : NaN;
      return Number.isFinite(ms) ? ms : null;
    };
    search.number = $('search-number').value.replace(/\D/g, '').slice(-15);
    search.bot = $('search-bot').value.trim();
    search.from = time('search-from');
    search.to = time('search-to');
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    readSearch();
    if (recordsOn) loadRecords(false).catch(() => renderRecent());
    else renderRecent();
  });
  $('search-clear').addEventListener('click', () => {
    form.reset();
    form.requestSubmit();
  });
  $('export-csv').addEventListener('click', () => exportRecords('csv').catch((err) => console.warn(err)));
  $('export-json').addEventListener('click', () => exportRecords('json').catch((err) => console.warn(err)));
  // A row is chosen by pressing and releasing on the same call. Not `click`: the live table is
  // re-rendered every 250 ms, and a press and a release on two renderings of one row make no click.
  let pressed = null;
  const rowId = (e) => e.target.closest('tr[data-id]')?.dataset.id ?? null;
  for (const body of [$('live').tBodies[0], $('recent').tBodies[0]]) {
    body.addEventListener('pointerdown', (e) => (pressed = e.button === 0 ? rowId(e) : null));
    body.addEventListener('pointerup', (e) => {
      const id = rowId(e);
      if (id !== null && id === pressed) openDetail(id);
      pressed = null;
    });
  }
  $('detail-close').addEventListener('click', closeDetail);
  setupPlayback(auth);
  const legend = $('legend');
  for (const [s, name] of STAGES.slice(1)) legend.append(el('span', { class: 'key' }, el('span', { class: `swatch seg-${s}` }), name));
  legend.append(el('span', { class: 'key' }, el('span', { class: 'swatch seg-running' }), 'now'));
  // Timers tick between messages.
  setInterval(() => live.size > 0 && renderLive(), 250);
  connect();
}

setup();
