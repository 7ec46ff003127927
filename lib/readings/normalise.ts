import { KasaError } from '../errors';

/** One outlet of a power strip as its parent's sysinfo lists it. */
export interface OutletInfo {
  /** Full child id (`<parent deviceId><NN>`), whatever form the firmware listed. */
  device_id: string;
  /** The id exactly as the firmware listed it (older firmware lists `00`..`05`). */
  child_id: string;
  /** Position in the children list, 0-based: the `/N` of a `host:port/N` device entry. */
  index: number;
  alias: string | null;
  relay_on: boolean | null;
  on_time_s: number | null;
}

/** What a plug or strip says about itself in `system.get_sysinfo`, in our terms. */
export interface DeviceDescription {
  device_id: string;
  alias: string | null;
  model: string | null;
  hw_ver: string | null;
  sw_ver: string | null;
  mac: string | null;
  /** The feature string lists ENE (energy meter); a strip's outlets then meter one by one. */
  has_emeter: boolean;
  relay_on: boolean | null;
  on_time_s: number | null;
  /** Outlets of a strip; empty for single plugs. */
  outlets: OutletInfo[];
}

/** `emeter.get_realtime` in W, V, A and Wh; a field the device did not report is null. */
export interface Realtime {
  power_w: number | null;
  voltage_v: number | null;
  current_a: number | null;
  total_wh: number | null;
}

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const text = (value: unknown): string | null =>
  typeof value === 'string' && value.length > 0 ? value : null;

const finite = (value: unknown): number | null =>
  typeof value === 'number' && Number.isFinite(value) ? value : null;

const flag = (value: unknown): boolean | null =>
  value === 1 || value === true ? true : value === 0 || value === false ? false : null;

/** Removes the float noise of unit conversions (0.001 * 43536 and the like). */
const tidy = (value: number): number => Math.round(value * 1e6) / 1e6;

/** Returns `module.method` of a reply, or throws DEVICE_BAD_REPLY when it is missing. */
export function methodReply(reply: JsonObject, module: string, method: string): JsonObject {
  const moduleReply = reply[module];
  if (!isObject(moduleReply)) {
    throw new KasaError('DEVICE_BAD_REPLY', `reply has no ${module} section`, { module });
  }
  const methodResult = moduleReply[method];
  // A module the device lacks answers at module level: {"emeter":{"err_code":-1,...}}.
  if (methodResult === undefined && 'err_code' in moduleReply) return moduleReply;
  if (!isObject(methodResult)) {
    throw new KasaError('DEVICE_BAD_REPLY', `reply has no ${module}.${method}`, { module });
  }
  return methodResult;
}

/** True when a module reply says the device does not have that module (plugs without a meter). */
export function isModuleMissing(result: JsonObject): boolean {
  return result.err_code === -1 || result.err_code === -2;
}

function throwOnErrorCode(result: JsonObject, what: string): void {
  const code = result.err_code;
  if (code !== undefined && code !== 0) {
    const message = text(result.err_msg) ?? 'no message';
    throw new KasaError(
      'DEVICE_ERROR_REPLY',
      `${what} failed: err_code ${JSON.stringify(code)} (${message})`,
      {
        err_code: code,
        err_msg: message,
      },
    );
  }
}

/**
 * Reads `system.get_sysinfo`. Outlets listed with short ids (`00`) get the parent's deviceId
 * prefixed, so an outlet's id is the same whatever the firmware version.
 */
export function describeDevice(sysinfo: JsonObject): DeviceDescription {
  throwOnErrorCode(sysinfo, 'get_sysinfo');
  const deviceId = text(sysinfo.deviceId);
  if (deviceId === null) {
    throw new KasaError('DEVICE_BAD_REPLY', 'sysinfo has no deviceId', {});
  }
  const children = Array.isArray(sysinfo.children) ? sysinfo.children.filter(isObject) : [];
  const outlets = children.map((child, index): OutletInfo => {
    const listedId = text(child.id) ?? String(index).padStart(2, '0');
    return {
      device_id: listedId.length <= 2 ? deviceId + listedId : listedId,
      child_id: listedId,
      index,
      alias: text(child.alias),
      relay_on: flag(child.state),
      on_time_s: finite(child.on_time),
    };
  });
  const lightState = isObject(sysinfo.light_state) ? sysinfo.light_state : undefined;
  return {
    device_id: deviceId,
    alias: text(sysinfo.alias),
    model: text(sysinfo.model),
    hw_ver: text(sysinfo.hw_ver),
    sw_ver: text(sysinfo.sw_ver),
    mac: text(sysinfo.mac) ?? text(sysinfo.mic_mac) ?? text(sysinfo.ethernet_mac),
    has_emeter: typeof sysinfo.feature === 'string' && sysinfo.feature.includes('ENE'),
    relay_on: flag(sysinfo.relay_state) ?? flag(lightState?.on_off),
    on_time_s: finite(sysinfo.on_time),
    outlets,
  };
}

/**
 * Picks the field of newer hardware when present, else the one of HS110 v1, each with the factor
 * that brings it to our unit.
 */
function unitField(
  result: JsonObject,
  newKey: string,
  newScale: number,
  oldKey: string,
  oldScale: number,
) {
  const fromNew = finite(result[newKey]);
  if (fromNew !== null) return tidy(fromNew * newScale);
  const fromOld = finite(result[oldKey]);
  return fromOld === null ? null : tidy(fromOld * oldScale);
}

/**
 * Reads `emeter.get_realtime` whatever the hardware's unit style: W/V/A/kWh fields on the oldest
 * HS110s, mW/mV/mA/Wh on the rest. Returns null when the device has no meter.
 */
export function readRealtime(result: JsonObject): Realtime | null {
  if (isModuleMissing(result)) return null;
  throwOnErrorCode(result, 'emeter.get_realtime');
  return {
    power_w: unitField(result, 'power_mw', 0.001, 'power', 1),
    voltage_v: unitField(result, 'voltage_mv', 0.001, 'voltage', 1),
    current_a: unitField(result, 'current_ma', 0.001, 'current', 1),
    total_wh: unitField(result, 'total_wh', 1, 'total', 1000),
  };
}

/** A device's own record of one day's energy, from `emeter.get_daystat`. */
export interface DayEnergy {
  /** The device's local date, 'YYYY-MM-DD'. */
  day: string;
  energy_wh: number;
}

/**
 * Reads `emeter.get_daystat` whatever the hardware's unit style: `energy` in kWh on older plugs,
 * `energy_wh` in Wh on newer ones (case-016). A new or reset plug answers an empty list, which
 * gives no days; entries without a usable date or energy are skipped, never turned into NaN.
 * Returns null when the device has no meter.
 */
export function readDayStat(result: JsonObject): DayEnergy[] | null {
  if (isModuleMissing(result)) return null;
  throwOnErrorCode(result, 'emeter.get_daystat');
  const list = result.day_list;
  if (!Array.isArray(list)) return [];
  const days: DayEnergy[] = [];
  for (const entry of list as unknown[]) {
    if (!isObject(entry)) continue;
    const day = calendarDate(entry.year, entry.month, entry.day);
    const energy = unitField(entry, 'energy_wh', 1, 'energy', 1000);
    if (day !== null && energy !== null && energy >= 0) days.push({ day, energy_wh: energy });
  }
  return days;
}

/** 'YYYY-MM-DD' for a real calendar date, otherwise null. */
function calendarDate(year: unknown, month: unknown, day: unknown): string | null {
  if (!Number.isInteger(year) || !Number.isInteger(month) || !Number.isInteger(day)) return null;
  const date = new Date(Date.UTC(year as number, (month as number) - 1, day as number));
  if (date.getUTCMonth() !== (month as number) - 1 || date.getUTCDate() !== day) return null;
  return date.toISOString().slice(0, 10);
}

/** Bounds beyond which a sample is corrupt rather than a real load (case-013). */
export interface PlausibilityLimits {
  /** Largest believable real power, W. Default 4000 (16 A at 250 V). */
  maxPowerW: number;
  /** Largest believable voltage, V. Default 300. */
  maxVoltageV: number;
  /** Largest believable current, A. Default 20. */
  maxCurrentA: number;
}

export const DEFAULT_LIMITS: PlausibilityLimits = {
  maxPowerW: 4000,
  maxVoltageV: 300,
  maxCurrentA: 20,
};

/**
 * Throws IMPLAUSIBLE_READING for a physically impossible sample. Power below volts times amps is
 * normal (power factor < 1, case-014) and is never questioned.
 */
export function checkPlausible(
  realtime: Realtime,
  limits: PlausibilityLimits,
  deviceId: string,
): void {
  const problems: string[] = [];
  const { power_w: power, voltage_v: voltage, current_a: current } = realtime;
  if (power !== null && (power < 0 || power > limits.maxPowerW)) {
    problems.push(`power ${power} W outside 0..${limits.maxPowerW} W`);
  }
  if (voltage !== null && (voltage < 0 || voltage > limits.maxVoltageV)) {
    problems.push(`voltage ${voltage} V outside 0..${limits.maxVoltageV} V`);
  }
  if (current !== null && (current < 0 || current > limits.maxCurrentA)) {
    problems.push(`current ${current} A outside 0..${limits.maxCurrentA} A`);
  }
  if (realtime.total_wh !== null && realtime.total_wh < 0) {
    problems.push(`energy counter ${realtime.total_wh} Wh is negative`);
  }
  if (problems.length > 0) {
    throw new KasaError('IMPLAUSIBLE_READING', `${deviceId}: ${problems.join('; ')}`, {
      device_id: deviceId,
    });
  }
}
