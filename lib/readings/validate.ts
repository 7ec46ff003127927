import { describeValue, KasaError } from '../errors';
import type { DeviceDay, DeviceInfo, Reading } from '../types';

/** Timestamps below this (March 1973 in ms) are almost surely seconds since the epoch. */
const MIN_PLAUSIBLE_TS_MS = 1e11;

/** One item of a batch that failed validation; `index` is its position in the input array. */
export interface RejectedItem {
  index: number;
  /** The input was this one item, not an array: it is named without an index. */
  single?: true;
  error: KasaError;
  /** Where the item came from, e.g. `payload` or `devices`; set by {@link toStoreInput}. */
  source?: string;
}

/**
 * Checks one reading in DESIGN.md's format and returns a fresh, normalised copy.
 *
 * - `device_id`: required non-empty string.
 * - `ts`: required; ms since the epoch as a number, a string of digits, an ISO 8601 string or a
 *   Date. Fractions of a ms are rounded.
 * - electrical fields (`power_w`, `voltage_v`, `current_a`, `total_wh`, `energy_wh`): finite
 *   numbers or numeric strings; anything else (missing, null, NaN, Infinity, `'NaN'`) becomes
 *   null, so NaN never reaches storage. A negative `energy_wh` becomes null too.
 * - text fields (`alias`, `model`, `host`, `child_id`): strings, otherwise null.
 *
 * @throws KasaError `BAD_READING` naming the missing or invalid field.
 */
export function toReading(value: unknown): Reading {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badReading(`a reading must be an object, got ${describeValue(value)}`);
  }
  const raw = value as Record<string, unknown>;
  const deviceId = raw.device_id;
  if (typeof deviceId !== 'string' || deviceId.trim() === '') {
    throw badReading(
      deviceId === undefined || deviceId === null || deviceId === ''
        ? 'device_id is missing'
        : `device_id must be a non-empty string, got ${describeValue(deviceId)}`,
    );
  }
  const energy = toNumber(raw.energy_wh);
  const reading: Reading = {
    device_id: deviceId,
    ts: toTimestamp(raw.ts),
    power_w: toNumber(raw.power_w),
    voltage_v: toNumber(raw.voltage_v),
    current_a: toNumber(raw.current_a),
    total_wh: toNumber(raw.total_wh),
    energy_wh: energy !== null && energy < 0 ? null : energy,
    alias: toText(raw.alias),
    model: toText(raw.model),
    host: toText(raw.host),
    port: toPort(raw.port),
    child_id: toText(raw.child_id),
    relay_on: toBoolean(raw.relay_on),
  };
  if (raw.cached === true) reading.cached = true;
  return reading;
}

/**
 * Validates one reading or an array of readings. Invalid items do not stop the valid ones:
 * they are returned in `rejected` with their index (0 for a single reading).
 */
export function toReadings(payload: unknown): { readings: Reading[]; rejected: RejectedItem[] } {
  const { valid, rejected } = collect(payload, toReading);
  return { readings: valid, rejected };
}

/**
 * Checks a device description (what `msg.devices` carries). `device_id` is required; other text
 * fields default to null, `has_emeter` to false.
 *
 * @throws KasaError `BAD_READING` naming the invalid field.
 */
export function toDeviceInfo(value: unknown): DeviceInfo {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badReading(`a device must be an object, got ${describeValue(value)}`);
  }
  const raw = value as Record<string, unknown>;
  const deviceId = raw.device_id;
  if (typeof deviceId !== 'string' || deviceId.trim() === '') {
    throw badReading('device_id is missing');
  }
  return {
    device_id: deviceId,
    parent_id: toText(raw.parent_id),
    child_id: toText(raw.child_id),
    host: toText(raw.host),
    port: toPort(raw.port),
    alias: toText(raw.alias),
    model: toText(raw.model),
    hw_ver: toText(raw.hw_ver),
    sw_ver: toText(raw.sw_ver),
    mac: toText(raw.mac),
    has_emeter: raw.has_emeter === true || raw.has_emeter === 1,
  };
}

/** Validates one device description or an array of them, like {@link toReadings}. */
export function toDeviceInfos(payload: unknown): {
  devices: DeviceInfo[];
  rejected: RejectedItem[];
} {
  const { valid, rejected } = collect(payload, toDeviceInfo);
  return { devices: valid, rejected };
}

/**
 * Checks a day a device filled from its own statistics (what `msg.daily` carries): `device_id`,
 * `day` as 'YYYY-MM-DD', `day_start` as a timestamp and a finite `energy_wh` >= 0 are required.
 *
 * @throws KasaError `BAD_READING` naming the invalid field.
 */
export function toDeviceDay(value: unknown): DeviceDay {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badReading(`a device day must be an object, got ${describeValue(value)}`);
  }
  const raw = value as Record<string, unknown>;
  const deviceId = raw.device_id;
  if (typeof deviceId !== 'string' || deviceId.trim() === '') {
    throw badReading('device_id is missing');
  }
  const day = raw.day;
  if (typeof day !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(day)) {
    throw badReading(`day must be a 'YYYY-MM-DD' date, got ${describeValue(day)}`);
  }
  const energy = toNumber(raw.energy_wh);
  if (energy === null) {
    throw badReading(`energy_wh must be a number >= 0, got ${describeValue(raw.energy_wh)}`);
  }
  if (energy < 0) throw badReading(`energy_wh must be >= 0, got ${energy}`);
  return {
    device_id: deviceId,
    day,
    day_start: toTimestamp(raw.day_start),
    energy_wh: energy,
    source: 'device',
  };
}

/** What a store message carries once checked: valid readings and devices, and what was left out. */
export interface StoreInput {
  readings: Reading[];
  devices: DeviceInfo[];
  /** Days of an outage filled from the devices' own statistics. */
  daily: DeviceDay[];
  rejected: RejectedItem[];
}

/**
 * Checks a store message: `payload` holds one reading or an array, `devices` optional device
 * descriptions, `daily` optional days filled from the devices' statistics. When `devices` or
 * `daily` is given, a payload that only triggered the message (absent, empty, or an inject
 * timestamp) is ignored; any other payload is checked, so a wrong one is never dropped unsaid.
 */
export function toStoreInput(payload: unknown, devices?: unknown, daily?: unknown): StoreInput {
  const input: StoreInput = { readings: [], devices: [], daily: [], rejected: [] };
  const extras = devices !== undefined || daily !== undefined;
  if (!extras || !isTrigger(payload)) {
    const checked = toReadings(payload);
    input.readings = checked.readings;
    for (const item of checked.rejected) input.rejected.push({ ...item, source: 'payload' });
  }
  if (devices !== undefined) {
    const checked = toDeviceInfos(devices);
    input.devices = checked.devices;
    for (const item of checked.rejected) input.rejected.push({ ...item, source: 'devices' });
  }
  if (daily !== undefined) {
    const checked = collect(daily, toDeviceDay);
    input.daily = checked.valid;
    for (const item of checked.rejected) input.rejected.push({ ...item, source: 'daily' });
  }
  return input;
}

/**
 * One line naming the first `max` rejected items and why, e.g.
 * `payload[1]: device_id is missing; payload[4]: ts is missing`.
 */
export function describeRejected(rejected: readonly RejectedItem[], max = 3): string {
  const listed = rejected
    .slice(0, max)
    .map((item) => {
      const source = item.source ?? 'item';
      return `${item.single ? source : `${source}[${item.index}]`}: ${item.error.message}`;
    })
    .join('; ');
  return rejected.length > max ? `${listed}; …` : listed;
}

/** A payload that only set a message off: none, empty, or an inject node's timestamp. */
function isTrigger(payload: unknown): boolean {
  return payload === undefined || payload === null || payload === '' || typeof payload === 'number';
}

function collect<T>(
  payload: unknown,
  check: (value: unknown) => T,
): { valid: T[]; rejected: RejectedItem[] } {
  const single = !Array.isArray(payload);
  const items = single ? [payload] : (payload as unknown[]);
  const valid: T[] = [];
  const rejected: RejectedItem[] = [];
  for (let index = 0; index < items.length; index++) {
    try {
      valid.push(check(items[index]));
    } catch (error) {
      if (!(error instanceof KasaError)) throw error;
      rejected.push({
        index,
        error: withIndex(error, index),
        ...(single ? { single: true as const } : {}),
      });
    }
  }
  return { valid, rejected };
}

function withIndex(error: KasaError, index: number): KasaError {
  return new KasaError(error.code, error.message, { ...error.details, index });
}

function toTimestamp(value: unknown): number {
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else if (value instanceof Date) {
    ms = value.getTime();
  } else if (typeof value === 'string' && value.trim() !== '') {
    ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  } else if (value === undefined || value === null || value === '') {
    throw badReading('ts is missing');
  } else {
    throw badReading(`ts must be ms since the epoch or an ISO time, got ${describeValue(value)}`);
  }
  if (!Number.isFinite(ms)) {
    throw badReading(`ts is not a valid time: ${describeValue(value)}`);
  }
  if (ms < MIN_PLAUSIBLE_TS_MS) {
    throw badReading(`ts must be in ms since the epoch; ${ms} looks like seconds`);
  }
  return Math.round(ms);
}

function toNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' && value.trim() !== '') {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : null;
  }
  return null;
}

function toPort(value: unknown): number | null {
  const port = toNumber(value);
  return port !== null && Number.isInteger(port) && port > 0 && port < 65536 ? port : null;
}

function toText(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function toBoolean(value: unknown): boolean | null {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  return null;
}

function badReading(message: string): KasaError {
  return new KasaError('BAD_READING', message);
}
