import { EnergyTracker } from '../../lib/readings/energy';

/** One generated reading, with the energy it truly used since the previous one (Wh). */
export interface SyntheticReading {
  ts: number;
  power_w: number;
  total_wh: number;
  on_time_s: number;
  /** What the pipeline stores: the tracker's reset-safe delta (null for the first reading). */
  energy_wh: number | null;
  /** Ground truth: energy used in the interval ending at `ts` (0 for the first reading). */
  true_wh: number;
}

export interface SyntheticOptions {
  /** First reading, ms since the epoch. */
  start: number;
  /** Number of readings. Default: a week at the interval. */
  count?: number;
  /** ms. Default 10 000. */
  intervalMs?: number;
  /** Reading indices at which the plug has just rebooted (counter and on_time from zero). */
  reboots?: number[];
  /** Reading indices at which the counter reads 0 once while on_time keeps rising. */
  glitches?: number[];
  /** Shifts the load curve so devices differ, W. Default 0. */
  offsetW?: number;
}

/**
 * A plug's readings with a known truth: a smooth daily load curve (20..140 W), a cumulative
 * counter that restarts at each reboot and reads 0 once at each glitch, and `energy_wh` computed
 * by the product's own EnergyTracker from the counter alone.
 */
export function syntheticReadings(options: SyntheticOptions): SyntheticReading[] {
  const interval = options.intervalMs ?? 10_000;
  const count = options.count ?? (7 * 86_400_000) / interval;
  const reboots = new Set(options.reboots ?? []);
  const glitches = new Set(options.glitches ?? []);
  const tracker = new EnergyTracker();
  const out: SyntheticReading[] = [];
  let counter = 1000;
  let onTime = 50_000;
  for (let i = 0; i < count; i++) {
    const ts = options.start + i * interval;
    const phase = (2 * Math.PI * (ts % 86_400_000)) / 86_400_000;
    const power = 80 + 60 * Math.sin(phase + i / 997) + (options.offsetW ?? 0);
    const used = i === 0 ? 0 : (power * interval) / 3_600_000;
    if (reboots.has(i)) {
      counter = used;
      onTime = interval / 1000;
    } else {
      counter += used;
      onTime += interval / 1000;
    }
    const reported = glitches.has(i) ? 0 : counter;
    const step = tracker.next('d', { ts, total_wh: reported, on_time_s: onTime });
    out.push({
      ts,
      power_w: power,
      total_wh: reported,
      on_time_s: onTime,
      energy_wh: step.energy_wh,
      true_wh: used,
    });
  }
  return out;
}
