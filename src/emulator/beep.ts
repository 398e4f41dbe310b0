/**
 * An answering machine's beep for the emulator's `voicemail` far end: a sine tone made by sox
 * (Debian's package), PCM16 mono at the call's rate; computed in code when sox is not installed.
 */
import { spawnSync } from 'node:child_process';

let soxOk: boolean | undefined;

function soxAvailable(): boolean {
  soxOk ??= spawnSync('sox', ['--version'], { stdio: 'ignore' }).status === 0;
  return soxOk;
}

/** `ms` of a `hz` sine at half of full scale, with 5 ms ramps (no clicks). */
export function beepPcm(hz = 1_000, ms = 500, sampleRate = 16_000): Int16Array {
  if (soxAvailable()) {
    const r = spawnSync(
      'sox',
      [
        '-n',
        '-r',
        String(sampleRate),
        '-b',
        '16',
        '-c',
        '1',
        '-e',
        'signed-integer',
        '-t',
        'raw',
        '-',
        'synth',
        String(ms / 1000),
        'sine',
        String(hz),
        'fade',
        '0.005',
        String(ms / 1000),
        '0.005',
        'vol',
        '0.5',
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    if (r.status === 0 && r.stdout.length >= 2) {
      const b = Buffer.from(r.stdout);
      return new Int16Array(b.buffer, b.byteOffset, Math.floor(b.length / 2)).slice();
    }
  }
  const n = Math.round((sampleRate * ms) / 1000);
  const ramp = Math.round(sampleRate * 0.005);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const env = Math.min(1, i / ramp, (n - 1 - i) / ramp);
    out[i] = Math.round(16_383 * env * Math.sin((2 * Math.PI * hz * i) / sampleRate));
  }
  return out;
}
