/** What the tracker remembers of a device's previous reading. */
export interface EnergyBaseline {
  /** The device's cumulative counter at the baseline, Wh. */
  total_wh: number;
  /** Seconds the device (or outlet relay) had been on at the baseline, when known. */
  on_time_s: number | null;
  /** When the baseline reading was taken, ms since the epoch. */
  ts: number;
  /**
   * Set when the last counter value fell below the baseline with no sign of a reboot: the
   * next value tells a glitch (it comes back up) from a reset (it stays low).
   */
  suspect_drop?: boolean;
}

/** How a counter value related to the device's previous one. */
export type EnergyEvent = 'first' | 'normal' | 'reset' | 'glitch' | 'suspect-drop' | 'repeat';

export interface EnergyStep {
  /** Energy since the previous reading, Wh; null for a device's first reading. Never negative. */
  energy_wh: number | null;
  event: EnergyEvent;
}

export interface CounterSample {
  ts: number;
  total_wh: number;
  on_time_s?: number | null;
}

/**
 * Turns a device's cumulative energy counter into per-reading deltas that survive reboots and
 * one-off glitches.
 *
 * - The counter went down and so did `on_time`: the device rebooted and counts from zero, so the
 *   whole new value is new energy.
 * - The counter went down and `on_time` kept rising: a glitch. The delta is 0 and the baseline
 *   stays where it was, so nothing is booked twice when the counter comes back.
 * - The counter went down and `on_time` is unknown: the sample is held as a suspect drop (delta
 *   0). If the next value is back above the baseline it was a glitch; if it is still below, the
 *   device was reset and the new value counts from zero (it includes the held sample's energy).
 */
export class EnergyTracker {
  private readonly baselines = new Map<string, EnergyBaseline>();

  /** Starts a device from a remembered baseline (e.g. its last stored reading). */
  seed(deviceId: string, baseline: EnergyBaseline): void {
    this.baselines.set(deviceId, { ...baseline });
  }

  baseline(deviceId: string): EnergyBaseline | undefined {
    return this.baselines.get(deviceId);
  }

  has(deviceId: string): boolean {
    return this.baselines.has(deviceId);
  }

  /** Every device's baseline, for persisting across restarts. */
  snapshot(): Record<string, EnergyBaseline> {
    return Object.fromEntries(this.baselines);
  }

  forget(deviceId: string): void {
    this.baselines.delete(deviceId);
  }

  /** Books one counter sample and returns the energy since the previous one. */
  next(deviceId: string, sample: CounterSample): EnergyStep {
    const onTime = sample.on_time_s ?? null;
    const previous = this.baselines.get(deviceId);
    const advance = (energy: number | null, event: EnergyEvent): EnergyStep => {
      this.baselines.set(deviceId, { total_wh: sample.total_wh, on_time_s: onTime, ts: sample.ts });
      return { energy_wh: energy, event };
    };
    if (previous === undefined) return advance(null, 'first');
    // The same or an older sample again (a replay, a reply stamped in the same millisecond).
    if (sample.ts <= previous.ts) return { energy_wh: 0, event: 'repeat' };

    const delta = sample.total_wh - previous.total_wh;
    if (delta >= 0) return advance(roundWh(delta), 'normal');

    const rebooted =
      onTime !== null && previous.on_time_s !== null ? onTime < previous.on_time_s : null;
    if (rebooted === true || (rebooted === null && previous.suspect_drop === true)) {
      return advance(roundWh(sample.total_wh), 'reset');
    }
    if (rebooted === false) return { energy_wh: 0, event: 'glitch' };
    previous.suspect_drop = true;
    return { energy_wh: 0, event: 'suspect-drop' };
  }
}

/** Counters are in whole Wh or kWh with three decimals: keep deltas free of float noise. */
function roundWh(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
