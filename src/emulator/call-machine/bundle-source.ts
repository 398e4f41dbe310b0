/**
 * The stand-in `call-machine-object-bundle.js`, as text. daily-js runs it in the page (by a
 * `<script>` tag with `avoidEval`, or `Function(...)`), possibly more than once per page (one per
 * call object). It is a relay: daily-js's messages go to the stand-in server over a WebSocket,
 * and the server's messages come back to daily-js as call-machine messages. See protocol.ts.
 */

export function callMachineBundleSource(opts: { controlUrl: string; dailyJsVersion: string }): string {
  return `/* patchbay call-machine stand-in for daily-js ${opts.dailyJsVersion} */
(function () {
  'use strict';
  var CONTROL_URL = ${JSON.stringify(opts.controlUrl)};
  var WHAT = 'iframe-call-message';
  var g = window.__pbCallMachine;
  if (!g) {
    g = window.__pbCallMachine = { machines: {} };
    window.addEventListener('message', onModuleMessage);
    window.addEventListener('patchbay-audio', function (ev) { onSpeak('speak', ev.detail); });
    window.addEventListener('patchbay-audio-cancel', function (ev) { onSpeak('speak-cancel', ev.detail); });
    window.addEventListener('patchbay-receive-audio', function (ev) {
      Object.keys(g.machines).forEach(function (id) {
        toServer(g.machines[id], { t: 'receive-audio', callClientId: id, enabled: !!(ev.detail && ev.detail.enabled) });
      });
    });
  }
  var pendings = (window._daily && window._daily.pendings) || [];
  while (pendings.length) setup(pendings.shift());

  function emptyState() {
    return { local: { streams: {}, public: { customTracks: {} } }, streams: {}, participants: {} };
  }

  function setup(id) {
    var inst = window._daily.instances[id];
    if (!inst || g.machines[id]) return;
    var m = { id: id, state: emptyState(), ws: null, queue: [], tones: {}, ctx: null, mic: null, participants: {} };
    g.machines[id] = m;
    inst.callMachine = {
      store: { getState: function () { return m.state; } },
      reset: function () { resetMachine(m); },
    };
    connect(m);
    toDaily(m, { action: 'call-machine-initialized' });
    toDaily(m, { action: 'loaded' });
  }

  function connect(m) {
    var ws = new WebSocket(CONTROL_URL);
    m.ws = ws;
    ws.onopen = function () {
      ws.send(JSON.stringify({ t: 'hello', callClientId: m.id, href: location.href }));
      var q = m.queue; m.queue = [];
      for (var i = 0; i < q.length; i++) ws.send(q[i]);
    };
    ws.onmessage = function (ev) {
      var cmd;
      try { cmd = JSON.parse(ev.data); } catch (e) { return; }
      onServer(m, cmd);
    };
    ws.onclose = function () { m.ws = null; };
  }

  function toServer(m, obj) {
    var s = JSON.stringify(obj, function (k, v) {
      if (typeof MediaStreamTrack !== 'undefined' && v instanceof MediaStreamTrack) return { kind: v.kind, id: v.id, track: true };
      return v;
    });
    if (m.ws && m.ws.readyState === 1) m.ws.send(s); else m.queue.push(s);
  }

  function toDaily(m, msg) {
    var out = Object.assign({}, msg, { what: WHAT, from: 'embedded', callClientId: m.id });
    window.postMessage(out, location.protocol === 'file:' ? '*' : location.origin);
  }

  function onModuleMessage(ev) {
    var d = ev.data;
    if (!d || d.what !== WHAT || d.from !== 'module' || !d.action) return;
    var m = g.machines[d.callClientId];
    if (!m) return;
    var msg = Object.assign({}, d);
    delete msg.what; delete msg.from; delete msg.callClientId; delete msg.callbackStamp;
    toServer(m, { t: 'action', callClientId: m.id, action: d.action, callbackStamp: d.callbackStamp, msg: msg });
    if (d.action === 'leave-meeting') {
      // Leaving never depends on the server: daily-js's leave() waits for this message.
      resetMachine(m);
      toDaily(m, { action: 'left-meeting' });
    }
  }

  // The page's clips go to every machine of this window that is in a call (one, in practice).
  function onSpeak(t, d) {
    if (!d) return;
    Object.keys(g.machines).forEach(function (id) {
      var m = g.machines[id];
      var msg = { t: t, callClientId: id, id: d.id };
      if (t === 'speak') { msg.durationMs = d.durationMs; if (typeof d.text === 'string') msg.text = d.text; }
      toServer(m, msg);
    });
  }

  function onServer(m, cmd) {
    if (cmd.t === 'reply') {
      var r = Object.assign({ action: 'pb-stand-in-reply' }, cmd.data || {}, { callbackStamp: cmd.callbackStamp });
      if (cmd.error !== undefined) r.error = cmd.error;
      toDaily(m, r);
      return;
    }
    if (cmd.t === 'audio') { onAudio(m, cmd); return; }
    if (cmd.t !== 'post' || !cmd.msg) return;
    var msg = cmd.msg;
    switch (msg.action) {
      case 'joined-meeting': onJoined(m, msg, cmd.feed); break;
      case 'participant-joined':
      case 'participant-updated': onParticipant(m, msg.participant, cmd.toneHz, cmd.loopback, cmd.feed); break;
      case 'participant-left': if (msg.participant) dropParticipant(m, msg.participant.session_id); break;
      case 'left-meeting': resetMachine(m); break;
    }
    toDaily(m, msg);
  }

  function audioCtx(m) {
    if (!m.ctx) m.ctx = new AudioContext({ sampleRate: 48000 });
    return m.ctx;
  }

  function onJoined(m, msg, feed) {
    var shared = window._daily.instances[m.id] && window._daily.instances[m.id].tracks;
    var track = shared && shared.audioTrack;
    if (track) {
      m.state.local.streams.cam = { stream: new MediaStream([track]) };
      watchMic(m, track);
    }
    var ps = msg.participants || {};
    Object.keys(ps).forEach(function (k) { if (k !== 'local') onParticipant(m, ps[k], undefined, false, feed); });
  }

  // Reports when the bot's microphone (the track daily-js got as audioSource) starts or stops carrying sound.
  function watchMic(m, track) {
    stopMic(m);
    var ctx = audioCtx(m);
    var src = ctx.createMediaStreamSource(new MediaStream([track]));
    var an = ctx.createAnalyser();
    an.fftSize = 2048;
    src.connect(an);
    var buf = new Float32Array(an.fftSize);
    var active = false;
    var peak = 0;
    var timer = setInterval(function () {
      an.getFloatTimeDomainData(buf);
      var sum = 0;
      for (var i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
      var rms = Math.sqrt(sum / buf.length);
      var now = rms > 0.01;
      if (now) peak = Math.max(peak, rms);
      if (now !== active) {
        active = now;
        // Start: the level that crossed the threshold. End: the loudest level of the stretch.
        toServer(m, { t: 'mic', callClientId: m.id, active: active, rms: active ? rms : peak });
        if (!active) peak = 0;
      }
    }, 20);
    m.mic = { src: src, an: an, timer: timer };
  }

  function stopMic(m) {
    if (!m.mic) return;
    clearInterval(m.mic.timer);
    try { m.mic.src.disconnect(); } catch (e) { /* ignore */ }
    m.mic = null;
  }

  function onParticipant(m, p, toneHz, loopback, feed) {
    if (!p || !p.session_id || p.local) return;
    var id = p.session_id;
    m.state.participants[id] = { public: { rtcType: { impl: 'sfu' } }, private: {} };
    var shared = window._daily.instances[m.id] && window._daily.instances[m.id].tracks;
    if (loopback && shared && shared.audioTrack && !m.tones[id]) {
      // The bot hears itself: its microphone track, as this participant's audio.
      var lt = shared.audioTrack.clone();
      m.tones[id] = { osc: null, track: lt };
      m.state.streams[id + '-cam-audio'] = { participantId: id, type: 'cam', pendingTrack: lt, starttime: new Date().toISOString() };
    }
    if (feed && !m.tones[id]) {
      // Bridge mode: the participant's audio is what the emulator sends for it ('audio' frames).
      var fd = audioCtx(m).createMediaStreamDestination();
      var ft = fd.stream.getAudioTracks()[0];
      m.tones[id] = { osc: null, track: ft, dest: fd, at: 0 };
      m.state.streams[id + '-cam-audio'] = { participantId: id, type: 'cam', pendingTrack: ft, starttime: new Date().toISOString() };
    }
    if (typeof toneHz === 'number' && toneHz > 0 && !m.tones[id]) {
      var ctx = audioCtx(m);
      var osc = ctx.createOscillator();
      osc.frequency.value = toneHz;
      var gain = ctx.createGain();
      gain.gain.value = 0.3;
      var dest = ctx.createMediaStreamDestination();
      osc.connect(gain); gain.connect(dest); osc.start();
      var track = dest.stream.getAudioTracks()[0];
      m.tones[id] = { osc: osc, track: track };
      m.state.streams[id + '-cam-audio'] = { participantId: id, type: 'cam', pendingTrack: track, starttime: new Date().toISOString() };
    }
  }

  // One frame of a participant's audio (PCM16 LE, base64) played into its track, back to back, with a
  // 150 ms jitter buffer (re-anchored after an underrun) so that late frames on a busy machine leave no gap.
  function onAudio(m, cmd) {
    var t = m.tones[cmd.p];
    if (!t || !t.dest) return;
    var bin = atob(cmd.pcm);
    var n = bin.length >> 1;
    if (n === 0) return;
    var ctx = audioCtx(m);
    var buf = ctx.createBuffer(1, n, cmd.r);
    var ch = buf.getChannelData(0);
    for (var i = 0; i < n; i++) {
      var v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
      ch[i] = (v >= 32768 ? v - 65536 : v) / 32768;
    }
    var src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(t.dest);
    var at = Math.max(ctx.currentTime + 0.15, t.at);
    t.at = at + buf.duration;
    src.start(at);
  }

  function dropParticipant(m, id) {
    var t = m.tones[id];
    if (t) { try { if (t.osc) t.osc.stop(); } catch (e) { /* ignore */ } t.track.stop(); delete m.tones[id]; }
    delete m.state.streams[id + '-cam-audio'];
    delete m.state.participants[id];
  }

  function resetMachine(m) {
    Object.keys(m.tones).forEach(function (id) { dropParticipant(m, id); });
    stopMic(m);
    m.state = emptyState();
  }
})();
`;
}
