/** Milliseconds since the Unix epoch, or a monotonic millisecond clock when used for timing. */
export interface Clock {
  /** Wall-clock time in ms since the epoch (UTC). */
  now(): number;
}

/** The four levels Node-RED's node logger offers; lib code logs through this and nothing else. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const systemClock: Clock = { now: () => Date.now() };

/** setTimeout/clearTimeout, injectable so tests can control time. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * One energy-meter reading of a plug or of one outlet of a strip, in the units of DESIGN.md.
 * Electrical fields are null when the device did not report them; they are never NaN.
 */
export interface Reading {
  /** Stable id: the device's deviceId, or the full child id of a strip outlet. */
  device_id: string;
  /** ms since the epoch (UTC), taken when the reply arrived. */
  ts: number;
  power_w: number | null;
  voltage_v: number | null;
  current_a: number | null;
  /** The device's own cumulative counter in Wh (it restarts from zero when the device reboots). */
  total_wh: number | null;
  /** Energy since the previous reading of the same device in Wh; reset-safe, never negative. */
  energy_wh: number | null;
  alias: string | null;
  model: string | null;
  host: string | null;
  port: number | null;
  /** Outlet id as the device lists it, for strip outlets; null for single plugs. */
  child_id: string | null;
  relay_on: boolean | null;
  /** True when the pool answered from its last reading instead of asking the device. */
  cached?: boolean;
}

/**
 * A day's energy as the device itself recorded it (`emeter.get_daystat`), used to fill days of
 * an outage that have no readings. The store writes it only where the day has no summary yet.
 */
export interface DeviceDay {
  device_id: string;
  /** Local date, 'YYYY-MM-DD'. */
  day: string;
  /** First instant of that local day, ms since the epoch. */
  day_start: number;
  energy_wh: number;
  source: 'device';
}

/** What the store records about a device besides its readings. */
export interface DeviceInfo {
  device_id: string;
  parent_id: string | null;
  child_id: string | null;
  host: string | null;
  port: number | null;
  alias: string | null;
  model: string | null;
  hw_ver: string | null;
  sw_ver: string | null;
  mac: string | null;
  has_emeter: boolean;
}
