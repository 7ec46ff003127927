import { systemClock, type Clock } from '../types';
import { MAX_INTERVAL_MS, MIN_INTERVAL_MS } from './poll-scheduler';

/** Settings of the adaptive-interval policy. */
export interface AdaptivePolicy {
  /** Interval of a device with ordinary variation, ms; default 60 000. */
  baseMs: number;
  /** Longest interval, ms; default 300 000. */
  maxMs: number;
  /** Shortest interval, ms; default 5 000 (the usual floor for polling local devices). */
  minMs: number;
  /** Coefficient of variation below which power counts as steady (base x2); default 0.01. */
  lowCv: number;
  /** Coefficient of variation above which power counts as busy (base / 2); default 0.1. */
  highCv: number;
  /** Power values per device a decision looks at; default 10, at least 2. */
  window: number;
  /** Spread (max - min) of the window within which power counts as unchanged, W; default 0.5. */
  deadbandW: number;
  /** Consecutive evaluations a new interval must win before it replaces the current one; default 3. */
  hold: number;
  /**
   * How far past its thresholds (deadband, low and high CV) a window must go to leave the band a
   * device is in, as a fraction of the threshold; default 0.2. Entering a band uses the plain
   * thresholds.
   */
  margin: number;
}

export const DEFAULT_POLICY: Readonly<AdaptivePolicy> = {
  baseMs: 60_000,
  maxMs: 300_000,
  minMs: 5_000,
  lowCv: 0.01,
  highCv: 0.1,
  window: 10,
  deadbandW: 0.5,
  hold: 3,
  margin: 0.2,
};

/** Why a window yields its interval. */
export type IntervalReason =
  'too-few-readings' | 'no-change' | 'low-variation' | 'normal-variation' | 'high-variation';

export interface Assessment {
  reason: IntervalReason;
  /** Within [minMs, maxMs], a whole number of ms. */
  intervalMs: number;
  /** Standard deviation / |mean| of the window; null when undefined (under 2 values, mean 0). */
  cv: number | null;
}

const finiteOr = (value: unknown, fallback: number): number =>
  typeof value === 'number' && Number.isFinite(value) ? value : fallback;

const clamp = (value: number, low: number, high: number): number =>
  Math.min(high, Math.max(low, value));

/**
 * A complete policy from partial or untrusted settings: missing or non-finite values take their
 * defaults, intervals are kept within what kasa-poll accepts (1 s to 1 day) and ordered
 * min <= base <= max, thresholds ordered low <= high, window and hold are whole numbers >= 2
 * and >= 1, the margin within [0, 0.9].
 */
export function normalisePolicy(settings: Partial<AdaptivePolicy> = {}): AdaptivePolicy {
  const bound = (value: unknown, fallback: number) =>
    Math.round(clamp(finiteOr(value, fallback), MIN_INTERVAL_MS, MAX_INTERVAL_MS));
  const minMs = bound(settings.minMs, DEFAULT_POLICY.minMs);
  const maxMs = Math.max(minMs, bound(settings.maxMs, DEFAULT_POLICY.maxMs));
  const baseMs = clamp(bound(settings.baseMs, DEFAULT_POLICY.baseMs), minMs, maxMs);
  const low = Math.max(0, finiteOr(settings.lowCv, DEFAULT_POLICY.lowCv));
  const high = Math.max(0, finiteOr(settings.highCv, DEFAULT_POLICY.highCv));
  return {
    baseMs,
    maxMs,
    minMs,
    lowCv: Math.min(low, high),
    highCv: Math.max(low, high),
    window: Math.round(clamp(finiteOr(settings.window, DEFAULT_POLICY.window), 2, 10_000)),
    deadbandW: Math.max(0, finiteOr(settings.deadbandW, DEFAULT_POLICY.deadbandW)),
    hold: Math.round(clamp(finiteOr(settings.hold, DEFAULT_POLICY.hold), 1, 1000)),
    margin: clamp(finiteOr(settings.margin, DEFAULT_POLICY.margin), 0, 0.9),
  };
}

/**
 * The interval a window of power values calls for (a pure function of its arguments):
 * every value within the deadband: base x4; CV below `lowCv`: base x2; above `highCv`: base / 2;
 * otherwise, and with fewer than 2 values, base; always clamped to [minMs, maxMs]. CV is the
 * population standard deviation over the absolute mean; a non-zero spread around a mean of 0
 * counts as high variation. Non-finite values are left out.
 *
 * @param current - the reason of the interval the device is on; its band's thresholds are
 *   widened by `policy.margin`, so a window hovering at a threshold keeps the device where it is
 */
export function assessWindow(
  values: readonly number[],
  policy: AdaptivePolicy,
  current: IntervalReason | null = null,
): Assessment {
  const within = (ms: number) => Math.round(clamp(ms, policy.minMs, policy.maxMs));
  const usable = values.filter((value) => Number.isFinite(value));
  const n = usable.length;
  if (n < 2) return { reason: 'too-few-readings', intervalMs: within(policy.baseMs), cv: null };
  let low = Infinity;
  let high = -Infinity;
  for (const value of usable) {
    low = Math.min(low, value);
    high = Math.max(high, value);
  }
  // CV does not depend on scale; dividing by the largest magnitude keeps sums of huge values
  // finite and makes "a mean of zero" mean zero relative to the values themselves.
  const scale = Math.max(Math.abs(low), Math.abs(high));
  let sum = 0;
  for (const value of usable) sum += scale > 0 ? value / scale : 0;
  const mean = sum / n;
  let squares = 0;
  for (const value of usable) squares += (scale > 0 ? value / scale - mean : 0) ** 2;
  const cv = Math.abs(mean) > 1e-9 ? Math.sqrt(squares / n) / Math.abs(mean) : null;
  const widen = (reason: IntervalReason) => (current === reason ? 1 + policy.margin : 1);
  const narrow = (reason: IntervalReason) => (current === reason ? 1 - policy.margin : 1);
  if (high - low <= policy.deadbandW * widen('no-change')) {
    return { reason: 'no-change', intervalMs: within(policy.baseMs * 4), cv };
  }
  const highCv = policy.highCv * narrow('high-variation') * widen('normal-variation');
  if (cv === null || cv > highCv) {
    return { reason: 'high-variation', intervalMs: within(policy.baseMs / 2), cv };
  }
  const lowCv = policy.lowCv * widen('low-variation') * narrow('normal-variation');
  if (cv < lowCv) {
    return { reason: 'low-variation', intervalMs: within(policy.baseMs * 2), cv };
  }
  return { reason: 'normal-variation', intervalMs: within(policy.baseMs), cv };
}

/** A device's interval changed; what kasa-adaptive-interval sends. */
export interface IntervalChange {
  device_id: string;
  interval_ms: number;
  /** The interval decided before, ms; null for a device's first decision. */
  previous_ms: number | null;
  cv: number | null;
  reason: IntervalReason;
}

/** How many devices are polled faster than, at, and slower than the base interval. */
export interface IntervalCounts {
  fast: number;
  base: number;
  slow: number;
  /** Devices seen whose window is not full yet. */
  learning: number;
}

export interface AdaptiveIntervalsOptions {
  policy?: Partial<AdaptivePolicy>;
  /** Tells when a device was last seen; default the system clock. */
  clock?: Clock;
  /** Devices remembered at most; the longest unseen are forgotten first. Default 10 000. */
  maxDevices?: number;
  /** A device not seen for this long is forgotten, ms; default 10x maxMs, at least 1 hour. */
  forgetAfterMs?: number;
}

interface DeviceState {
  values: number[];
  intervalMs: number | null;
  reason: IntervalReason | null;
  /** An interval that differs from the current one, and how many evaluations in a row chose it. */
  candidateMs: number | null;
  candidateCount: number;
  lastSeen: number;
}

/**
 * Per-device adaptive intervals from a stream of power readings. A device's first decision is
 * made when its window is full. After that, two things keep a device whose variation hovers at a
 * threshold from flapping between two intervals: the thresholds of its current band are widened
 * by `margin`, and a different interval must win `hold` evaluations in a row.
 */
export class AdaptiveIntervals {
  readonly policy: AdaptivePolicy;
  private readonly clock: Clock;
  private readonly maxDevices: number;
  private readonly forgetAfterMs: number;
  /** In order of last sighting, oldest first. */
  private readonly devices = new Map<string, DeviceState>();

  constructor(options: AdaptiveIntervalsOptions = {}) {
    this.policy = normalisePolicy(options.policy);
    this.clock = options.clock ?? systemClock;
    this.maxDevices = Math.max(1, Math.round(finiteOr(options.maxDevices, 10_000)));
    this.forgetAfterMs = finiteOr(
      options.forgetAfterMs,
      Math.max(3_600_000, this.policy.maxMs * 10),
    );
  }

  /**
   * Takes one power reading of a device (W) and returns the change of its interval it causes,
   * if any. A missing or non-numeric power only marks the device as seen.
   */
  observe(deviceId: string, powerW: unknown): IntervalChange | null {
    const now = this.clock.now();
    const known = this.devices.get(deviceId);
    const usable = typeof powerW === 'number' && Number.isFinite(powerW);
    if (known === undefined && !usable) return null;
    const state = known ?? {
      values: [],
      intervalMs: null,
      reason: null,
      candidateMs: null,
      candidateCount: 0,
      lastSeen: now,
    };
    state.lastSeen = now;
    // Re-inserting keeps the map ordered by last sighting, so forgetting starts at its front.
    this.devices.delete(deviceId);
    this.devices.set(deviceId, state);
    this.forget(now);
    if (!usable) return null;
    state.values.push(powerW);
    if (state.values.length > this.policy.window) state.values.shift();
    if (state.values.length < this.policy.window) return null;
    return this.decide(deviceId, state, assessWindow(state.values, this.policy, state.reason));
  }

  /** The interval decided for a device, ms; undefined before its first decision. */
  intervalOf(deviceId: string): number | undefined {
    return this.devices.get(deviceId)?.intervalMs ?? undefined;
  }

  counts(): IntervalCounts {
    const counts: IntervalCounts = { fast: 0, base: 0, slow: 0, learning: 0 };
    for (const { intervalMs } of this.devices.values()) {
      if (intervalMs === null) counts.learning += 1;
      else if (intervalMs < this.policy.baseMs) counts.fast += 1;
      else if (intervalMs > this.policy.baseMs) counts.slow += 1;
      else counts.base += 1;
    }
    return counts;
  }

  get size(): number {
    return this.devices.size;
  }

  clear(): void {
    this.devices.clear();
  }

  private decide(
    deviceId: string,
    state: DeviceState,
    assessment: Assessment,
  ): IntervalChange | null {
    const { intervalMs } = assessment;
    const previous = state.intervalMs;
    if (previous !== null) {
      if (intervalMs === previous) {
        // Two bands can share an interval at a bound; the margins follow the band in effect.
        state.reason = assessment.reason;
        state.candidateMs = null;
        state.candidateCount = 0;
        return null;
      }
      if (intervalMs === state.candidateMs) state.candidateCount += 1;
      else {
        state.candidateMs = intervalMs;
        state.candidateCount = 1;
      }
      if (state.candidateCount < this.policy.hold) return null;
    }
    state.intervalMs = intervalMs;
    state.reason = assessment.reason;
    state.candidateMs = null;
    state.candidateCount = 0;
    return {
      device_id: deviceId,
      interval_ms: intervalMs,
      previous_ms: previous,
      cv: assessment.cv,
      reason: assessment.reason,
    };
  }

  private forget(now: number): void {
    for (const [deviceId, state] of this.devices) {
      const stale = now - state.lastSeen > this.forgetAfterMs;
      if (!stale && this.devices.size <= this.maxDevices) break;
      this.devices.delete(deviceId);
    }
  }
}
