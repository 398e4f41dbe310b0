/**
 * What the worker's static server hands to Chromium: the page, the bridge script that drives
 * daily-js inside it, and the AudioWorklet that reads remote audio.
 *
 * These are plain browser JavaScript kept as strings: the project is compiled for Node (no DOM
 * lib), and functions passed to `page.evaluate` would be serialised after tsx's transform
 * (which may inject helpers the page does not have). The page reports daily-js events to Node
 * through one binding, `__pbEmit1(kind + '\n' + json)`, and Node calls the `window.__patchbay`
 * methods. Audio travels separately, as binary WebSocket frames (see audio-channel.ts).
 */

import { DAILY_JS_EVENTS } from '../call-client-vocab.js';

export const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>patchbay bot</title>
<script src="/daily.js"></script>
<script src="/bridge.js"></script>
</head><body></body></html>
`;

/** Reads one remote track: 20 ms frames of PCM16 at `outRate`, posted to the main thread. */
export const CAPTURE_WORKLET_JS = `
class PbCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.outRate = o.outRate || 16000;
    this.ratio = sampleRate / this.outRate;
    this.frameLen = Math.round(this.outRate / 50);
    this.frame = new Int16Array(this.frameLen);
    this.n = 0;
    this.pos = 0; // fractional read position in input samples, relative to the current block
    this.acc = 0;
    this.accN = 0;
  }
  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const ch = input[0];
    for (let i = 0; i < ch.length; i++) {
      // Box filter + decimation: average the input samples that fall into one output sample.
      this.acc += ch[i];
      this.accN++;
      this.pos += 1;
      if (this.pos >= this.ratio) {
        this.pos -= this.ratio;
        let v = this.acc / this.accN;
        this.acc = 0;
        this.accN = 0;
        if (v > 1) v = 1; else if (v < -1) v = -1;
        this.frame[this.n++] = v < 0 ? v * 0x8000 : v * 0x7fff;
        if (this.n === this.frameLen) {
          this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
          this.frame = new Int16Array(this.frameLen);
          this.n = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor('pb-capture', PbCapture);
`;

export const BRIDGE_JS = `
(function () {
  'use strict';
  var OUT_RATE = 16000;
  var state = {
    call: null,
    ctx: null,
    micDest: null,
    micTrack: null,
    sink: null,
    dailyConfig: {},
    playEnd: 0,
    plays: {},
    receiving: false,
    captures: {},
    lastError: null,
    workletReady: null,
    sock: null,
    dropped: 0,
  };
  var enc = new TextEncoder();
  var dec = new TextDecoder();

  function emit(kind, payload) {
    try {
      var json = JSON.stringify(payload, function (k, v) {
        if (typeof MediaStreamTrack !== 'undefined' && v instanceof MediaStreamTrack) return undefined;
        if (v instanceof Date) return v.toISOString();
        if (v instanceof Set) return Array.from(v);
        return v;
      });
      window.__pbEmit1(kind + '\\n' + json);
    } catch (e) {
      // The binding is gone (page closing): nothing to report to.
    }
  }

  function errText(e) {
    if (e === undefined || e === null) return 'unknown error';
    if (typeof e === 'string') return e;
    if (e instanceof Error) return e.message;
    if (typeof e.errorMsg === 'string') return e.errorMsg;
    if (typeof e.msg === 'string') return e.msg;
    if (typeof e.message === 'string') return e.message;
    try { return JSON.stringify(e); } catch (x) { return String(e); }
  }

  function fail(e) {
    return { ok: false, error: errText(e), lastError: state.lastError };
  }

  var EVENTS = ${JSON.stringify(DAILY_JS_EVENTS)};

  function onDailyEvent(ev) {
    if (!ev) return;
    if (ev.action === 'error') state.lastError = ev;
    if (ev.action === 'track-started') onTrackStarted(ev);
    if (ev.action === 'track-stopped' || ev.action === 'participant-left') {
      var p = ev.participant;
      if (p && p.session_id && (ev.action === 'participant-left' || ev.type === 'audio')) stopCapture(p.session_id);
    }
    emit('daily', ev);
  }

  async function ensureAudio() {
    if (state.ctx) return;
    state.ctx = new AudioContext({ sampleRate: 48000 });
    state.micDest = state.ctx.createMediaStreamDestination();
    state.micDest.channelCount = 1;
    state.micTrack = state.micDest.stream.getAudioTracks()[0];
    state.sink = state.ctx.createGain();
    state.sink.gain.value = 0;
    state.sink.connect(state.ctx.destination);
    state.workletReady = state.ctx.audioWorklet.addModule('/capture-worklet.js');
    await state.workletReady;
    try { await state.ctx.resume(); } catch (e) { /* autoplay flag makes this a no-op */ }
  }

  function createCall() {
    var props = { dailyConfig: Object.assign({}, state.dailyConfig) };
    state.call = window.Daily.createCallObject(props);
    for (var i = 0; i < EVENTS.length; i++) state.call.on(EVENTS[i], onDailyEvent);
  }

  // ---- the binary audio socket to the worker (frame layout: audio-channel.ts) ----
  function connectAudio(url) {
    return new Promise(function (resolve, reject) {
      var ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      ws.onopen = function () { state.sock = ws; resolve(); };
      ws.onerror = function () { reject(new Error('the audio socket to the worker failed')); };
      ws.onclose = function () { if (state.sock === ws) state.sock = null; };
      ws.onmessage = onSockMessage;
    });
  }

  function sockSend(obj) {
    if (state.sock && state.sock.readyState === 1) state.sock.send(JSON.stringify(obj));
  }

  function onSockMessage(ev) {
    if (typeof ev.data === 'string') {
      var m = JSON.parse(ev.data);
      if (m.t === 'stop') stopAudio(m.id);
      return;
    }
    var buf = ev.data;
    var hl = new DataView(buf).getUint16(0, true);
    var h = JSON.parse(dec.decode(new Uint8Array(buf, 2, hl)));
    var off = 2 + hl + ((2 + hl) % 2);
    if (h.t === 'play') play(h.id, new Int16Array(buf, off, (buf.byteLength - off) >> 1), h.rate, h.text);
  }

  function sendCapture(sessionId, ab) {
    var ws = state.sock;
    if (!ws || ws.readyState !== 1) return;
    // Back-pressure: more than ~2 s of audio unsent means the worker is not reading; drop and count.
    if (ws.bufferedAmount > 64000) { state.dropped++; return; }
    var h = enc.encode(JSON.stringify({ t: 'cap', p: sessionId, r: OUT_RATE, d: state.dropped }));
    var pad = (2 + h.length) % 2;
    var out = new Uint8Array(2 + h.length + pad + ab.byteLength);
    out[0] = h.length & 255; out[1] = h.length >> 8;
    out.set(h, 2);
    out.set(new Uint8Array(ab), 2 + h.length + pad);
    ws.send(out.buffer);
  }

  // Spins the page's main thread for \`ms\` (lets the worker tell its renderer process by CPU time).
  function burn(ms) {
    var t = performance.now();
    while (performance.now() - t < ms) { /* spin */ }
    return { ok: true };
  }

  async function init(opts) {
    try {
      if (opts.audioUrl) await connectAudio(opts.audioUrl);
      state.dailyConfig = {};
      if (opts.bundleUrl) state.dailyConfig.bundlePathOverride = opts.bundleUrl;
      if (opts.avoidEval) state.dailyConfig.avoidEval = true;
      await ensureAudio();
      createCall();
      return { ok: true, version: window.Daily.version(), meetingState: state.call.meetingState() };
    } catch (e) {
      return fail(e);
    }
  }

  async function join(opts) {
    try {
      var ms = state.call ? state.call.meetingState() : 'none';
      if (!state.call || ms === 'error' || state.call.isDestroyed()) {
        if (state.call && !state.call.isDestroyed()) { try { await state.call.destroy(); } catch (e) { /* ignore */ } }
        createCall();
      }
      state.lastError = null;
      var participants = await state.call.join({
        url: opts.url,
        token: opts.token,
        userName: opts.userName,
        audioSource: state.micTrack,
        videoSource: false,
      });
      var local = participants && participants.local;
      return { ok: true, localSessionId: local ? local.session_id : '', participants: participants };
    } catch (e) {
      return fail(e);
    }
  }

  async function leave() {
    try {
      stopAllCaptures();
      stopAllAudio();
      if (state.call && !state.call.isDestroyed()) await state.call.leave();
      return { ok: true };
    } catch (e) {
      return fail(e);
    }
  }

  async function destroy() {
    try {
      stopAllCaptures();
      stopAllAudio();
      if (state.call && !state.call.isDestroyed()) await state.call.destroy();
      state.call = null;
      return { ok: true };
    } catch (e) {
      return fail(e);
    }
  }

  function meetingState() {
    return state.call ? state.call.meetingState() : 'none';
  }

  async function invoke(method, args) {
    try {
      if (!state.call) throw new Error('no call object');
      var r = await state.call[method].apply(state.call, args || []);
      // Methods such as updateParticipant return the call object: not a value to send back.
      return { ok: true, value: r === state.call ? null : r === undefined ? null : r };
    } catch (e) {
      return fail(e);
    }
  }

  // ---- audio out: PCM16 (from the audio socket) → AudioBuffer → the bot's microphone track ----
  // Announces clips as DOM events. Daily's call machine ignores them; the local call-machine
  // stand-in relays them so an emulated caller "hears" the bot's words (src/emulator/call-machine/).
  function announce(type, detail) {
    try { window.dispatchEvent(new CustomEvent(type, { detail: detail })); } catch (e) { /* ignore */ }
  }

  function play(id, pcm, sampleRate, text) {
    try {
      sockSend(Object.assign({ t: 'accepted', id: id }, playUnsafe(id, pcm, sampleRate, text)));
    } catch (e) {
      delete state.plays[id];
      sockSend({ t: 'failed', id: id, error: errText(e) });
    }
  }

  function playUnsafe(id, pcm, sampleRate, text) {
    var ctx = state.ctx;
    if (pcm.length === 0) {
      announce('patchbay-audio', { id: id, text: typeof text === 'string' ? text : undefined, durationMs: 0 });
      return { durationMs: 0, startInMs: 0 };
    }
    var buf = ctx.createBuffer(1, pcm.length, sampleRate);
    var ch = buf.getChannelData(0);
    for (var i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 0x8000;
    var src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(state.micDest);
    var startAt = Math.max(ctx.currentTime + 0.01, state.playEnd);
    state.playEnd = startAt + buf.duration;
    state.plays[id] = src;
    src.onended = function () {
      if (state.plays[id] !== src) return;
      delete state.plays[id];
      sockSend({ t: 'played', id: id });
    };
    src.start(startAt);
    announce('patchbay-audio', { id: id, text: typeof text === 'string' ? text : undefined, durationMs: buf.duration * 1000 });
    return { durationMs: buf.duration * 1000, startInMs: (startAt - ctx.currentTime) * 1000 };
  }

  function stopAudio(id) {
    var src = state.plays[id];
    if (!src) return { ok: true };
    delete state.plays[id];
    announce('patchbay-audio-cancel', { id: id });
    try { src.stop(); } catch (e) { /* not started */ }
    try { src.disconnect(); } catch (e) { /* already */ }
    // Anything queued after it starts as soon as possible instead of after a gap.
    var later = Object.keys(state.plays).length;
    if (later === 0) state.playEnd = 0;
    return { ok: true };
  }

  function stopAllAudio() {
    Object.keys(state.plays).forEach(stopAudio);
    state.playEnd = 0;
  }

  // ---- audio in: remote tracks → AudioWorklet → 20 ms PCM16 frames → the audio socket ----
  function startCapture(sessionId, track) {
    if (!track || track.kind !== 'audio') return;
    var cur = state.captures[sessionId];
    if (cur && cur.track === track) return;
    stopCapture(sessionId);
    var ctx = state.ctx;
    var src = ctx.createMediaStreamSource(new MediaStream([track]));
    var node = new AudioWorkletNode(ctx, 'pb-capture', {
      numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1, channelCountMode: 'explicit',
      processorOptions: { outRate: OUT_RATE },
    });
    node.port.onmessage = function (m) { sendCapture(sessionId, m.data); };
    src.connect(node);
    node.connect(state.sink);
    state.captures[sessionId] = { track: track, src: src, node: node };
  }

  function stopCapture(sessionId) {
    var c = state.captures[sessionId];
    if (!c) return;
    delete state.captures[sessionId];
    try { c.src.disconnect(); } catch (e) { /* ignore */ }
    try { c.node.disconnect(); } catch (e) { /* ignore */ }
    c.node.port.onmessage = null;
  }

  function stopAllCaptures() {
    Object.keys(state.captures).forEach(stopCapture);
  }

  function onTrackStarted(ev) {
    if (!state.receiving || !ev.participant || ev.participant.local || ev.type !== 'audio') return;
    startCapture(ev.participant.session_id, ev.track);
  }

  async function receiveAudio(enabled) {
    state.receiving = !!enabled;
    announce('patchbay-receive-audio', { enabled: !!enabled });
    if (!enabled) { stopAllCaptures(); return { ok: true }; }
    await state.workletReady;
    var ps = state.call ? state.call.participants() : {};
    Object.keys(ps).forEach(function (k) {
      var p = ps[k];
      if (!p || p.local) return;
      var t = p.tracks && p.tracks.audio;
      var track = t && (t.persistentTrack || t.track);
      if (track) startCapture(p.session_id, track);
    });
    return { ok: true, capturing: Object.keys(state.captures) };
  }

  window.__patchbay = {
    init: init, join: join, leave: leave, destroy: destroy, meetingState: meetingState, invoke: invoke,
    stopAudio: stopAudio, receiveAudio: receiveAudio, burn: burn,
  };
})();
`;
