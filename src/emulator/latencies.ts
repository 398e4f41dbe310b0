/** The emulated platform's latencies, changeable while running (`setLatencies`, `PUT /_emulator/latencies`). */
import { zeroLatencies, type Latencies } from './types.js';

const isLatencyName = (k: string): k is keyof Latencies => k in zeroLatencies;
export const LATENCY_NAMES = Object.keys(zeroLatencies).filter(isLatencyName);

export class LatencySettings {
  readonly values: Latencies = { ...zeroLatencies };

  constructor(initial: Partial<Latencies> = {}) {
    this.set(initial);
  }

  /** Throws RangeError for an unknown name or a value that is not a number >= 0. */
  set(l: Partial<Latencies>): void {
    for (const [k, v] of Object.entries(l)) {
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`latency ${k} must be a number >= 0`);
      if (!isLatencyName(k)) throw new RangeError(`unknown latency ${k}`);
      this.values[k] = v;
    }
  }
}
