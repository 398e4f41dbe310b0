/**
 * Daily's cloud recordings, emulated for real (docs/emulator.md, "Recordings"): `POST
 * /rooms/:name/recordings/start|stop`, `GET /recordings`, `GET /recordings/:id`, `GET
 * /recordings/:id/access-link`, `DELETE /recordings/:id`, and the daily-js events
 * `recording-started`, `recording-stopped`, `recording-error` to every bot in the room.
 *
 * What a recording holds: the audio the emulator carries, placed at the time it was heard —
 * phone participants' `speak` steps (real espeak-ng speech) on channel 1, the bots' audio on
 * channel 2 (the samples the bot sent, or its words spoken by espeak-ng when it sent text only).
 * Written as a 16 kHz PCM16 stereo WAV when the recording stops (Daily writes its file after the
 * stop too; its `cloud-audio-only` file is a mixed MP4/M4A, the emulator's two channels are for
 * checking who said what when). Download links are signed, and expire (`valid_for_secs`).
 */
import { resample } from '../voice/resample.js';
import { wavHeader } from '../voice/wav.js';
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ApiError, badRequest } from './errors.js';
import { isObj, type Room, type RoomRecorder } from './model.js';
import { SPEECH_RATE, speechPcm } from './speech.js';

export type RecordingType = 'cloud' | 'cloud-audio-only' | 'raw-tracks';
const TYPES: readonly RecordingType[] = ['cloud', 'cloud-audio-only', 'raw-tracks'];
export type Leg = 'caller' | 'bot';

/** Daily's default and largest `valid_for_secs` of an access link (docs: 1 hour, at most 12 hours). */
const LINK_DEFAULT_SECS = 3_600;
const LINK_MAX_SECS = 43_200;
/** A piece arriving up to this long after where the leg's last one ended continues it (real-time frames come in bunches, a little slow); one arriving before it ends follows it. */
const JOIN_TOLERANCE_SAMPLES = (SPEECH_RATE * 3) / 10;

interface Piece {
  at: number;
  pcm: Int16Array;
}

export interface StoredRecording {
  id: string;
  roomName: string;
  type: RecordingType;
  instanceId: string;
  startedAtMs: number;
  stoppedAtMs?: number;
  status: 'in-progress' | 'finished';
  maxParticipants: number;
  mtgSessionId: string;
  shareToken: string;
  /** The WAV file, once finished. */
  file?: string;
  legs: Record<Leg, Piece[]>;
  /** Where each leg's last piece ended (samples), to join real-time frames without gaps. */
  ends: Record<Leg, number>;
}

export type { RoomRecorder } from './model.js';

export interface RecordingsOptions {
  logger: Logger;
  /** Where WAV files go (default: a fresh directory under the OS temp dir). */
  dir?: string;
  /** Signs download links. */
  secret: string;
  /** The emulator's HTTP origin, for download links. */
  origin: () => string;
  /** Tells the room's bots (daily-js events). */
  broadcast: (room: Room, event: 'recording-started' | 'recording-stopped' | 'recording-error', payload: Record<string, unknown>) => void;
}

/** DTMF's row and column frequencies (ITU-T Q.23). */
const DTMF: Record<string, [number, number]> = {
  '1': [697, 1209],
  '2': [697, 1336],
  '3': [697, 1477],
  A: [697, 1633],
  '4': [770, 1209],
  '5': [770, 1336],
  '6': [770, 1477],
  B: [770, 1633],
  '7': [852, 1209],
  '8': [852, 1336],
  '9': [852, 1477],
  C: [852, 1633],
  '*': [941, 1209],
  '0': [941, 1336],
  '#': [941, 1477],
  D: [941, 1633],
};
/** How long a key's tone lasts in the recording. */
export const DTMF_TONE_MS = 100;

/** A key's dual tone, 16 kHz PCM16 (what a phone's in-band DTMF puts on the line). */
export function dtmfTone(key: string): Int16Array {
  const f = DTMF[key.toUpperCase()];
  const n = (SPEECH_RATE * DTMF_TONE_MS) / 1000;
  const out = new Int16Array(n);
  if (!f) return out;
  for (let i = 0; i < n; i++) {
    const t = i / SPEECH_RATE;
    out[i] = Math.round(8_000 * (Math.sin(2 * Math.PI * f[0] * t) + Math.sin(2 * Math.PI * f[1] * t)));
  }
  return out;
}

export class Recordings {
  readonly dir: string;
  private readonly byId = new Map<string, StoredRecording>();
  /** The recording running in each room (one instance per room: the default instanceId). */
  private readonly active = new Map<string, StoredRecording>();

  constructor(private readonly o: RecordingsOptions) {
    this.dir = o.dir ?? join(tmpdir(), `patchbay-emulator-recordings-${process.pid}-${randomUUID().slice(0, 8)}`);
    mkdirSync(this.dir, { recursive: true });
  }

  /** `POST /rooms/:name/recordings/start`, with Daily's refusals. */
  start(room: Room, body: unknown): StoredRecording {
    const b = isObj(body) ? body : {};
    const type = (b.type ?? 'cloud') as RecordingType;
    if (!TYPES.includes(type)) throw badRequest(`type must be one of ${TYPES.join(', ')}`);
    const enabled = room.properties.enable_recording;
    const allowed = type === 'raw-tracks' ? enabled === 'raw-tracks' : enabled === 'cloud' || enabled === 'cloud-audio-only';
    if (!allowed) throw badRequest(`recording type ${type} is not enabled for this room (enable_recording: ${String(enabled ?? 'unset')})`);
    if (!room.sessionActive || room.participants.size === 0) throw new ApiError(404, 'not-found', 'no active meeting session in this room');
    if (this.active.has(room.name)) throw badRequest('a recording is already in progress in this room');
    const rec: StoredRecording = {
      id: randomUUID(),
      roomName: room.name,
      type,
      instanceId: typeof b.instanceId === 'string' ? b.instanceId : '00000000-0000-4000-8000-000000000000',
      startedAtMs: Date.now(),
      status: 'in-progress',
      maxParticipants: room.participants.size,
      mtgSessionId: randomUUID(),
      shareToken: randomUUID().replace(/-/g, '').slice(0, 12),
      legs: { caller: [], bot: [] },
      ends: { caller: 0, bot: 0 },
    };
    this.byId.set(rec.id, rec);
    this.active.set(room.name, rec);
    room.recorder = this.recorderFor(rec, room);
    // daily-js: `recordingId` is present only for `cloud` recordings.
    this.o.broadcast(room, 'recording-started', {
      type,
      ...(type === 'cloud' ? { recordingId: rec.id } : {}),
      instanceId: rec.instanceId,
      startedBy: 'rest-api',
    });
    this.o.logger.debug({ room: room.name, recordingId: rec.id }, 'emulator: recording started');
    return rec;
  }

  /** `POST /rooms/:name/recordings/stop`: 400 when none is active (Daily's documented answer). */
  stop(room: Room): StoredRecording {
    const rec = this.active.get(room.name);
    if (!rec) throw badRequest('no active recording in this room');
    this.finish(room, rec);
    return rec;
  }

  /** The session ended (everyone left, room deleted): Daily stops its recording then. */
  sessionEnded(room: Room): void {
    const rec = this.active.get(room.name);
    if (rec) this.finish(room, rec);
  }

  private finish(room: Room, rec: StoredRecording): void {
    this.active.delete(room.name);
    delete room.recorder;
    rec.stoppedAtMs = Date.now();
    try {
      rec.file = this.write(rec);
      rec.status = 'finished';
      this.o.broadcast(room, 'recording-stopped', { instanceId: rec.instanceId, type: rec.type });
    } catch (err) {
      rec.status = 'finished';
      this.o.broadcast(room, 'recording-error', { errorMsg: `recording could not be written: ${String(err)}`, instanceId: rec.instanceId });
    }
    rec.legs = { caller: [], bot: [] };
  }

  private recorderFor(rec: StoredRecording, room: Room): RoomRecorder {
    const place = (leg: Leg, pcm: Int16Array, atMs: number): void => {
      if (rec.status !== 'in-progress') return;
      let at = Math.max(0, Math.round(((atMs - rec.startedAtMs) * SPEECH_RATE) / 1000));
      if (at < rec.ends[leg] + JOIN_TOLERANCE_SAMPLES) at = rec.ends[leg];
      rec.legs[leg].push({ at, pcm });
      rec.ends[leg] = at + pcm.length;
      rec.maxParticipants = Math.max(rec.maxParticipants, room.participants.size);
    };
    return {
      add: (leg, pcm, rate) => place(leg, resample(Int16Array.from(pcm), rate, SPEECH_RATE), Date.now()),
      addWords: (leg, text) => {
        const atMs = Date.now();
        void speechPcm(text)
          .then((pcm) => pcm && place(leg, pcm, atMs))
          .catch(() => undefined);
      },
    };
  }

  /** Channel 1 the phone participants, channel 2 the bots; from the start to the stop. */
  private write(rec: StoredRecording): string {
    const lengthSamples = Math.round((((rec.stoppedAtMs ?? Date.now()) - rec.startedAtMs) * SPEECH_RATE) / 1000);
    const frames = new Int16Array(lengthSamples * 2);
    (['caller', 'bot'] as const).forEach((leg, ch) => {
      for (const p of rec.legs[leg]) {
        for (let i = 0; i < p.pcm.length && p.at + i < lengthSamples; i++) {
          const k = (p.at + i) * 2 + ch;
          frames[k] = Math.max(-32768, Math.min(32767, frames[k]! + p.pcm[i]!));
        }
      }
    });
    const file = join(this.dir, `${rec.id}.wav`);
    const data = Buffer.from(frames.buffer, frames.byteOffset, frames.byteLength);
    writeFileSync(file, Buffer.concat([wavHeader(2, SPEECH_RATE, data.length), data]));
    return file;
  }

  get(id: string): StoredRecording {
    const r = this.byId.get(id);
    if (!r) throw new ApiError(404, 'not-found', `recording ${id} not found`);
    return r;
  }

  list(q: { room_name?: string; limit?: number }): StoredRecording[] {
    const all = [...this.byId.values()].filter((r) => q.room_name === undefined || r.roomName === q.room_name);
    return all.sort((a, b) => b.startedAtMs - a.startedAtMs).slice(0, q.limit ?? 100);
  }

  /** `DELETE /recordings/:id`: the file goes too; its links stop working. */
  delete(id: string): void {
    const r = this.get(id);
    if (r.status === 'in-progress') throw badRequest('a recording in progress cannot be deleted; stop it first');
    if (r.file) rmSync(r.file, { force: true });
    this.byId.delete(id);
  }

  toJson(r: StoredRecording): Record<string, unknown> {
    return {
      id: r.id,
      room_name: r.roomName,
      start_ts: Math.floor(r.startedAtMs / 1000),
      status: r.status,
      max_participants: r.maxParticipants,
      ...(r.status === 'finished' && r.stoppedAtMs ? { duration: Math.round((r.stoppedAtMs - r.startedAtMs) / 1000) } : {}),
      share_token: r.shareToken,
      s3key: `emulator/${r.roomName}/${r.id}.wav`,
      mtgSessionId: r.mtgSessionId,
      tracks: [],
    };
  }

  private sign(id: string, expires: number): string {
    return createHmac('sha256', this.o.secret).update(`${id}\0${expires}`).digest('base64url');
  }

  /** `GET /recordings/:id/access-link?valid_for_secs=`: `{download_link, expires}`. */
  accessLink(id: string, validForSecs: number | undefined, nowMs = Date.now()): { download_link: string; expires: number } {
    const r = this.get(id);
    if (r.status !== 'finished' || !r.file) throw badRequest('the recording is not finished yet');
    const secs = validForSecs ?? LINK_DEFAULT_SECS;
    if (!Number.isInteger(secs) || secs < 1 || secs > LINK_MAX_SECS) throw badRequest(`valid_for_secs must be from 1 to ${LINK_MAX_SECS}`);
    const expires = Math.floor(nowMs / 1000) + secs;
    const q = new URLSearchParams({ expires: String(expires), sig: this.sign(id, expires) });
    return { download_link: `${this.o.origin()}/_emulator/recordings/${encodeURIComponent(id)}/download?${q}`, expires };
  }

  /** The file behind a download link; throws 403 when the link is forged or expired, 404 when deleted. */
  download(id: string, expires: number, sig: string, nowMs = Date.now()): string {
    const want = Buffer.from(this.sign(id, expires));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) throw new ApiError(403, 'forbidden', 'invalid signature');
    if (expires * 1000 < nowMs) throw new ApiError(403, 'forbidden', 'the link has expired');
    const r = this.byId.get(id);
    if (!r?.file) throw new ApiError(404, 'not-found', 'recording not found');
    return r.file;
  }
}
