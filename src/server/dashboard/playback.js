// The call detail's recording player (issue 24, item 6; docs/dashboard.md, "Recordings").
// GET /calls/:id/recording (with the dashboard's token) gives the recording's tracks, each with a
// signed link that lasts minutes; the <audio> element plays them (the server answers Range
// requests, so seeking fetches only what it needs). The conversation's lines and the strip under
// the player are a timeline of the call synced to playback: the line being heard is highlighted,
// a click on a line or on the strip seeks there. PCI pauses are gaps on the strip (a local file
// holds silence there; Daily's recording is one file per segment, played one after the other).

const $ = (id) => document.getElementById(id);

let state = null; // { id, rec, cur, lines } of the call whose recording is loaded
let auth = () => ({});
let relinkAtMs = 0;

const sec = (ms, originMs) => ((ms - originMs) / 1000).toFixed(1);

/** Epoch ms being heard now, or null before anything is loaded. */
function nowMs() {
  const audio = $('player-audio');
  const t = state?.rec.tracks[state.cur];
  return t ? t.startMs + audio.currentTime * 1000 : null;
}

function span(rec) {
  const first = rec.tracks[0].startMs;
  const last = rec.tracks.at(-1);
  const dur = $('player-audio').duration;
  const end = last.endMs ?? (Number.isFinite(dur) ? last.startMs + dur * 1000 : first + 1);
  return { from: first, to: Math.max(end, first + 1) };
}

/** The strip: recorded stretches, pauses as gaps, a tick per line, the playhead. */
function drawStrip() {
  const strip = $('player-strip');
  if (!state) return strip.replaceChildren();
  const { from, to } = span(state.rec);
  const pct = (ms) => `${(Math.min(Math.max(ms - from, 0), to - from) / (to - from)) * 100}%`;
  const parts = [];
  for (const t of state.rec.tracks) {
    const seg = document.createElement('span');
    seg.className = 'rec';
    seg.style.left = pct(t.startMs);
    seg.style.width = `calc(${pct(t.endMs ?? to)} - ${pct(t.startMs)})`;
    parts.push(seg);
  }
  for (const p of state.rec.pauses) {
    const gap = document.createElement('span');
    gap.className = 'gap';
    gap.style.left = pct(p.startMs);
    gap.style.width = `calc(${pct(p.endMs ?? to)} - ${pct(p.startMs)})`;
    gap.title = `recording paused ${sec(p.startMs, state.rec.originMs)}–${p.endMs === null ? '' : sec(p.endMs, state.rec.originMs)} s`;
    gap.dataset.pause = 'true';
    parts.push(gap);
  }
  for (const li of state.lines) {
    const tick = document.createElement('span');
    tick.className = `tick ${li.classList.contains('caller') ? 'caller' : li.classList.contains('bot') ? 'bot' : 'system'}`;
    tick.style.left = pct(Number(li.dataset.atMs));
    parts.push(tick);
  }
  const head = document.createElement('span');
  head.className = 'head';
  head.id = 'player-head';
  head.style.left = pct(nowMs() ?? from);
  parts.push(head);
  strip.replaceChildren(...parts);
}

/** Highlights the last line said at or before what is heard now, and moves the playhead. */
function follow() {
  if (!state) return;
  const at = nowMs();
  let current = null;
  for (const li of state.lines) if (Number(li.dataset.atMs) <= at) current = li;
  for (const li of state.lines) {
    const on = li === current;
    li.classList.toggle('playing', on);
    if (on) li.setAttribute('aria-current', 'true');
    else li.removeAttribute('aria-current');
  }
  const list = $('detail-events');
  if (current && !$('player-audio').paused) {
    const top = current.offsetTop - list.offsetTop;
    if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - current.offsetHeight)
      list.scrollTop = top - list.clientHeight / 3;
  }
  const head = $('player-head');
  if (head) {
    const { from, to } = span(state.rec);
    head.style.left = `${(Math.min(Math.max(at - from, 0), to - from) / (to - from)) * 100}%`;
  }
}

/** Loads track `i` (its signed link) and, once its metadata is there, puts it at `offsetS`. */
function load(i, offsetS, play) {
  const audio = $('player-audio');
  state.cur = i;
  audio.src = state.rec.tracks[i].url;
  audio.addEventListener(
    'loadedmetadata',
    () => {
      audio.currentTime = Math.max(0, offsetS);
      if (play) audio.play().catch(() => undefined);
      drawStrip();
      follow();
    },
    { once: true },
  );
  audio.load();
}

/** Plays from epoch ms `ms`: the track holding it (a time in a gap between Daily's tracks: the next track's start). */
export function seekTo(ms) {
  if (!state) return;
  const tracks = state.rec.tracks;
  let i = tracks.findLastIndex((t) => t.startMs <= ms);
  if (i < 0) i = 0;
  const t = tracks[i];
  let offsetS = (ms - t.startMs) / 1000;
  if (t.endMs !== null && ms > t.endMs && i + 1 < tracks.length) {
    i += 1;
    offsetS = 0;
  }
  const audio = $('player-audio');
  if (i !== state.cur || !audio.src) return load(i, offsetS, !audio.paused);
  audio.currentTime = Math.max(0, offsetS);
  follow();
}

/** The links lapsed (403 on the next range): ask again, and go on where it was. */
async function relink() {
  if (!state || Date.now() - relinkAtMs < 10_000) return;
  relinkAtMs = Date.now();
  const audio = $('player-audio');
  const at = nowMs();
  const wasPlaying = !audio.paused;
  const rec = await fetchRecording(state.id);
  if (!rec || !state) return;
  state.rec = rec;
  const i = Math.min(state.cur, rec.tracks.length - 1);
  load(i, (at - rec.tracks[i].startMs) / 1000, wasPlaying);
}

async function fetchRecording(id) {
  const res = await fetch(`/calls/${encodeURIComponent(id)}/recording`, { headers: auth(), cache: 'no-store' });
  if (!res.ok) return null;
  return res.json();
}

/** Shows (or hides) the player for the detail's call; the conversation's lines have `data-at-ms`. */
export async function showRecording(call, isLive) {
  const panel = $('detail-player');
  const lines = [...$('detail-events').querySelectorAll('li[data-at-ms]')];
  for (const li of lines) li.tabIndex = 0;
  if (state && state.id === call.id) {
    state.lines = lines;
    drawStrip();
    follow();
    return;
  }
  closeRecording();
  const summary = call.recording;
  if (!summary || summary.ids.length === 0 || summary.state === 'off') return;
  panel.hidden = false;
  $('player-state').textContent =
    `${summary.mode ?? ''} · ${summary.state}${summary.pauses.length ? ` · ${summary.pauses.length} pause(s)` : ''}`;
  if (isLive) {
    $('player-note').textContent = 'Recording; it plays here once the call has ended.';
    return;
  }
  const rec = await fetchRecording(call.id);
  // Another call chosen (or the detail closed) meanwhile.
  if ($('detail').dataset.id !== call.id || $('detail').hidden || state) return;
  if (!rec || rec.tracks.length === 0) {
    $('player-note').textContent = 'No recording to play.';
    return;
  }
  state = { id: call.id, rec, cur: 0, lines };
  panel.dataset.tracks = String(rec.tracks.length);
  $('player-note').textContent = rec.pauses.length
    ? rec.pauses
        .map((p) => `recording paused ${sec(p.startMs, rec.originMs)}–${p.endMs === null ? '' : sec(p.endMs, rec.originMs)} s`)
        .join('; ')
    : '';
  load(0, 0, false);
}

export function closeRecording() {
  state = null;
  const audio = $('player-audio');
  audio.pause();
  audio.removeAttribute('src');
  audio.load();
  $('detail-player').hidden = true;
  $('player-note').textContent = '';
  $('player-strip').replaceChildren();
  for (const li of document.querySelectorAll('#detail-events li.playing')) li.classList.remove('playing');
}

/** Once per page: the audio element's and the lines' listeners. */
export function setupPlayback(authHeaders) {
  auth = authHeaders;
  const audio = $('player-audio');
  for (const ev of ['timeupdate', 'seeked', 'play', 'pause']) audio.addEventListener(ev, follow);
  audio.addEventListener('ended', () => {
    if (state && state.cur + 1 < state.rec.tracks.length) load(state.cur + 1, 0, true);
  });
  audio.addEventListener('error', () => relink().catch(() => undefined));
  const list = $('detail-events');
  const lineOf = (e) => (state ? e.target.closest('li[data-at-ms]') : null);
  list.addEventListener('click', (e) => {
    const li = lineOf(e);
    if (li) seekTo(Number(li.dataset.atMs));
  });
  list.addEventListener('keydown', (e) => {
    const li = lineOf(e);
    if (li && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      seekTo(Number(li.dataset.atMs));
    }
  });
  $('player-strip').addEventListener('click', (e) => {
    if (!state) return;
    const box = e.currentTarget.getBoundingClientRect();
    const { from, to } = span(state.rec);
    seekTo(from + ((e.clientX - box.left) / box.width) * (to - from));
  });
}
