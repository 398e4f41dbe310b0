// The call detail's turns (issue 23): one bar per timed turn of the conversation, from the
// `turn_latency` entries of its event log (src/core/turn-timing.ts encodes them), each stage a
// segment as long as it took, the slowest one marked. Bars share one scale: the slowest turn of
// the call spans the width. Put in the page with textContent only, like app.js.

/** Stages in turn order, with their labels (both pipelines: cascade and speech-to-speech). */
export const TURN_STAGES = [
  ['speechEnd', 'caller stopped'],
  ['transcript', 'transcript'],
  ['llmFirstToken', 'LLM first token'],
  ['ttsFirstAudio', 'TTS first audio'],
  ['modelFirstAudio', 'model first audio'],
  ['firstFrameSent', 'first frame sent'],
];
const ORDER = new Map(TURN_STAGES.map(([s], i) => [s, i]));
const LABEL = new Map(TURN_STAGES);
const TURN_EVENT = /^#\d{1,6}( [A-Za-z]{1,20}=\d{1,9}){1,8}$/;

/** The turns in an event log: index, start (epoch ms), stage offsets (ms). */
export function turnsOf(events) {
  const out = [];
  for (const e of events) {
    if (e.kind !== 'turn_latency' || !TURN_EVENT.test(e.value)) continue;
    const [head, ...parts] = e.value.split(' ');
    const stages = {};
    for (const p of parts) {
      const [k, v] = p.split('=');
      if (ORDER.has(k)) stages[k] = Number(v);
    }
    out.push({ index: Number(head.slice(1)), atMs: e.atMs, stages });
  }
  return out;
}

/** Each reached stage's own time (since the stage before it), in turn order. */
function durations(stages) {
  const reached = Object.keys(stages).sort((a, b) => ORDER.get(a) - ORDER.get(b));
  const segs = [];
  for (let i = 1; i < reached.length; i++) segs.push({ stage: reached[i], ms: Math.max(0, stages[reached[i]] - stages[reached[i - 1]]) });
  return segs;
}

const fmt = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);

/**
 * The bars, as elements made with `el(tag, props, ...children)` (app.js's helper). `t0`: the call's
 * arrival (epoch ms), for each turn's "+time".
 */
export function turnBars(events, t0, el) {
  const turns = turnsOf(events);
  const scale = Math.max(1, ...turns.map((t) => t.stages.firstFrameSent ?? 0));
  return turns.map((t) => {
    const segs = durations(t.stages);
    const slow = segs.reduce((a, s) => (a && a.ms >= s.ms ? a : s), undefined);
    const total = t.stages.firstFrameSent ?? 0;
    const bar = el('div', { class: 'turn-bar' });
    bar.style.width = `${Math.max(4, (total / scale) * 100)}%`;
    for (const s of segs) {
      const isSlow = s === slow;
      const part = el('span', {
        class: `tseg tseg-${s.stage}${isSlow ? ' slow' : ''}`,
        'data-stage': s.stage,
        title: `${LABEL.get(s.stage)}: ${fmt(s.ms)}`,
      });
      part.style.flexGrow = String(total > 0 ? Math.max(s.ms / total, 0.01) : 1);
      bar.append(part);
    }
    return el(
      'li',
      {
        class: 'turn',
        'data-turn': String(t.index),
        'data-slow': slow?.stage ?? '',
        title: segs.map((s) => `${LABEL.get(s.stage)}: ${fmt(s.ms)}`).join('\n'),
      },
      el('span', { class: 'turn-label', text: `#${t.index} · +${fmt(t.atMs - t0)}` }),
      el('span', { class: 'turn-track' }, bar),
      el('span', { class: 'turn-total', text: fmt(total) }),
      el('span', { class: 'turn-slow', text: slow ? `slow: ${LABEL.get(slow.stage)} ${fmt(slow.ms)}` : '' }),
    );
  });
}

/** The legend: a swatch per stage the call's turns reached. */
export function turnLegend(events, el) {
  const reached = new Set(turnsOf(events).flatMap((t) => Object.keys(t.stages)));
  return TURN_STAGES.slice(1)
    .filter(([s]) => reached.has(s))
    .map(([s, label]) => el('span', { class: 'legend-item' }, el('span', { class: `swatch tseg-${s}` }), el('span', { text: label })));
}
