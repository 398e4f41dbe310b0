// patchbay live dashboard. No build step, no dependencies: served as is from src/server/dashboard/.
// Data arrives over /ws/events (hello snapshot, then call / ended / stats) and, for older or
// filtered records, from GET /calls. Everything is put in the page with textContent (no HTML).

const token = new URLSearchParams(location.search).get('token') ?? '';

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
const GOOD = new Set(['completed', 'caller_hangup']);

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
};

let clockOffsetMs = 0; // server time − browser time
const now = () => Date.now() + clockOffsetMs;
const live = new Map(); // id → view
let recent = []; // views, newest first
let recordsOn = false;
let filter = '';
let nextBefore = null;

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
    { 'data-call-id': v.callId, 'data-id': v.id, 'data-stage': v.stage, 'data-state': v.state },
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
    { 'data-call-id': v.callId, 'data-id': v.id, 'data-outcome': v.outcome ?? '' },
    el('td', { class: 'mono', text: t.ended ? fmtTime(t.ended) : '–' }),
    el('td', { class: 'mono', text: v.from }),
    el('td', { text: v.bot }),
    el('td', {}, el('span', { class: `pill ${GOOD.has(v.outcome) ? 'ok' : 'bad'}`, text: v.outcome ?? '?' })),
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
  const shown = recent.filter((v) => !filter || v.outcome === filter);
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
});

async function loadRecords(append) {
  const q = new URLSearchParams({ limit: '50' });
  if (filter) q.set('outcome', filter);
  if (append && nextBefore !== null) q.set('before', String(nextBefore));
  const res = await fetch(`/calls?${q}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: 'no-store' });
  if (!res.ok) throw new Error(`GET /calls: ${res.status}`);
  const body = await res.json();
  const views = body.calls.map(fromStored);
  recent = append ? recent.concat(views) : views;
  nextBefore = body.nextBefore;
  renderRecent();
}

function onMessage(m) {
  if (typeof m.nowMs === 'number') clockOffsetMs = m.nowMs - Date.now();
  switch (m.type) {
    case 'hello':
      $('version').textContent = `v${m.version}`;
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
      break;
    case 'ended':
      live.delete(m.call.id);
      recent = [m.call, ...recent.filter((v) => v.id !== m.call.id)].slice(0, 500);
      renderLive();
      renderRecent();
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
  const outcomes = [
    'completed', 'caller_hangup', 'caller_hangup_on_hold', 'queue_timeout', 'room_failed', 'join_failed', 'dialin_timeout',
    'forward_failed', 'bot_error', 'bot_load_failed', 'idle_timeout', 'bot_removed', 'max_duration', 'worker_crashed',
    'worker_memory', 'shutdown', 'dialin_error',
  ];
  for (const o of outcomes) select.append(el('option', { value: o, text: o }));
  select.addEventListener('change', () => {
    filter = select.value;
    if (recordsOn) loadRecords(false).catch(() => renderRecent());
    else renderRecent();
  });
  $('older').addEventListener('click', () => loadRecords(true).catch(() => undefined));
  const legend = $('legend');
  for (const [s, name] of STAGES.slice(1)) legend.append(el('span', { class: 'key' }, el('span', { class: `swatch seg-${s}` }), name));
  legend.append(el('span', { class: 'key' }, el('span', { class: 'swatch seg-running' }), 'now'));
  // Timers tick between messages.
  setInterval(() => live.size > 0 && renderLive(), 250);
  connect();
}

setup();
