import { KasaError } from '../errors';
import type { DeviceAddress } from '../protocol/transport';
import type { EnergyEvent, EnergyTracker } from '../readings/energy';
import {
  checkPlausible,
  describeDevice,
  methodReply,
  readRealtime,
  type DeviceDescription,
  type OutletInfo,
  type PlausibilityLimits,
  type Realtime,
} from '../readings/normalise';
import { LocalDays } from '../store/local-day';
import type { Clock, DeviceDay, DeviceInfo, Reading } from '../types';
import { BACKFILL_GAP_MS, fetchMissingDays, type ReadingGap } from './backfill';
import { addressKey, type PollTarget } from './device-entries';
import { cachedReading, type RecentPolls } from './recent-polls';

/** The one thing polling needs of the device pool. */
export interface DeviceRequester {
  request(
    address: DeviceAddress,
    payload: Record<string, unknown>,
  ): Promise<Record<string, unknown>>;
}

/** What polling has learnt about the device at an address, shared by every poll of it. */
export interface LearnedDevice {
  device_id: string;
  has_emeter: boolean;
  is_strip: boolean;
  /** What the device rows were last built from, to tell the store only about changes. */
  signature: string;
}

/** Something worth telling the user once, not an error of the poll. */
export interface PollNotice {
  device_id: string;
  kind: 'counter-reset' | 'counter-glitch' | 'no-emeter' | 'identity-changed' | 'backfilled';
  /** For identity-changed: the device id that used to answer at this address. */
  previous_device_id?: string;
  /** For backfilled: how many whole days of an outage the device's own statistics filled. */
  days?: number;
}

export interface PollOutcome {
  target: PollTarget;
  readings: Reading[];
  /** Device rows for the store, present only when they are new or changed. */
  devices: DeviceInfo[] | null;
  /** Partial failures: an outlet that did not answer, a sample rejected as implausible. */
  problems: KasaError[];
  notices: PollNotice[];
  /** Days of an outage filled from the device's own statistics. */
  daily: DeviceDay[];
}

export interface PollContext {
  requester: DeviceRequester;
  tracker: EnergyTracker;
  /** Keyed by `host:port`. */
  learned: Map<string, LearnedDevice>;
  limits: PlausibilityLimits;
  clock: Clock;
  /** Answers polls of a target polled within its window from the last answer; absent: always ask. */
  recent?: RecentPolls;
  /** The local days outage backfill fills; default: the system's time zone. */
  days?: LocalDays;
}

const SYSINFO = { system: { get_sysinfo: {} } };
const SYSINFO_AND_REALTIME = { system: { get_sysinfo: {} }, emeter: { get_realtime: {} } };

const NOTICE_OF_EVENT: Partial<Record<EnergyEvent, PollNotice['kind']>> = {
  reset: 'counter-reset',
  glitch: 'counter-glitch',
};

/**
 * Polls one target, or answers from its last poll when `context.recent` has one from within its
 * window (or one under way): then the readings are marked `cached` and no request is sent.
 * Energy is booked per `consumer` (a kasa-poll node): each consumer's readings carry the energy
 * since that consumer's previous reading, so every stream adds up on its own even when several
 * nodes poll the same device. Throws when the device itself could not be read.
 */
export async function pollTarget(
  context: PollContext,
  target: PollTarget,
  consumer = '',
): Promise<PollOutcome> {
  const recent = context.recent;
  if (recent === undefined) return pollDevice(context, target, consumer);
  const answered = recent.lookup(target.key);
  if (answered === undefined) {
    return recent.track(target.key, pollDevice(context, target, consumer));
  }
  const outcome = emptyOutcome(target);
  for (const reading of await answered) {
    const copy = cachedReading(reading);
    // The counter's on-time is not kept with the answer; a drop is then judged by the next value.
    copy.energy_wh = bookEnergy(
      context,
      outcome,
      consumer,
      copy.device_id,
      copy.ts,
      copy.total_wh,
      null,
    );
    outcome.readings.push(copy);
  }
  return outcome;
}

function emptyOutcome(target: PollTarget): PollOutcome {
  return { target, readings: [], devices: null, problems: [], notices: [], daily: [] };
}

/**
 * Asks the device: a single round trip (sysinfo with emeter realtime) for plugs, sysinfo plus
 * one emeter request per metered outlet for strips. Plugs without a meter are asked for sysinfo
 * only once that is known. Throws when the device itself could not be read.
 */
async function pollDevice(
  context: PollContext,
  target: PollTarget,
  consumer: string,
): Promise<PollOutcome> {
  const address = { host: target.host, port: target.port };
  const key = addressKey(target.host, target.port);
  const known = context.learned.get(key);
  const askRealtime = known === undefined || (known.has_emeter && !known.is_strip);
  const reply = await context.requester.request(
    address,
    askRealtime ? SYSINFO_AND_REALTIME : SYSINFO,
  );
  const ts = context.clock.now();
  const device = describeDevice(methodReply(reply, 'system', 'get_sysinfo'));
  const outcome = emptyOutcome(target);
  if (known !== undefined && known.device_id !== device.device_id) {
    outcome.notices.push({
      device_id: device.device_id,
      kind: 'identity-changed',
      previous_device_id: known.device_id,
    });
  }

  const isStrip = device.outlets.length > 0;
  let hasEmeter = device.has_emeter;
  const gaps: ReadingGap[] = [];
  if (isStrip) {
    const outlets = selectOutlets(device, target);
    if (device.has_emeter)
      await readOutlets(context, address, device, outlets, outcome, consumer, gaps);
    else if (known === undefined)
      outcome.notices.push({ device_id: device.device_id, kind: 'no-emeter' });
  } else {
    if (target.outlet !== null) throw noSuchOutlet(target, device);
    if (askRealtime) {
      const realtime = readRealtime(methodReply(reply, 'emeter', 'get_realtime'));
      hasEmeter = realtime !== null;
      if (realtime === null) {
        if (known === undefined || known.has_emeter) {
          outcome.notices.push({ device_id: device.device_id, kind: 'no-emeter' });
        }
      } else {
        addReading(context, outcome, consumer, device, null, realtime, ts, gaps);
      }
    }
  }
  for (const gap of gaps) await backfill(context, address, outcome, gap);

  // Device rows are built only when something the store records about them changed.
  const signature = descriptionSignature(device, target, hasEmeter);
  if (known?.signature !== signature) outcome.devices = deviceRows(device, target, hasEmeter);
  context.learned.set(key, {
    device_id: device.device_id,
    has_emeter: hasEmeter,
    is_strip: isStrip,
    signature,
  });
  return outcome;
}

function noSuchOutlet(target: PollTarget, device: DeviceDescription): KasaError {
  return new KasaError(
    'NO_SUCH_OUTLET',
    `${target.key}: ${device.model ?? 'device'} has ${device.outlets.length} outlets; outlet ${String(target.outlet)} does not exist`,
    { target: target.key, outlets: device.outlets.length },
  );
}

function selectOutlets(device: DeviceDescription, target: PollTarget): OutletInfo[] {
  if (target.outlet === null) return device.outlets;
  const outlet = device.outlets[target.outlet];
  if (outlet === undefined) throw noSuchOutlet(target, device);
  return [outlet];
}

async function readOutlets(
  context: PollContext,
  address: DeviceAddress,
  device: DeviceDescription,
  outlets: OutletInfo[],
  outcome: PollOutcome,
  consumer: string,
  gaps: ReadingGap[],
): Promise<void> {
  // One after another on purpose: strips answer one request at a time (case-028).
  for (const outlet of outlets) {
    try {
      const reply = await context.requester.request(address, {
        context: { child_ids: [outlet.device_id] },
        emeter: { get_realtime: {} },
      });
      const realtime = readRealtime(methodReply(reply, 'emeter', 'get_realtime'));
      if (realtime !== null) {
        addReading(context, outcome, consumer, device, outlet, realtime, context.clock.now(), gaps);
      }
    } catch (error) {
      if (!(error instanceof KasaError)) throw error;
      // Readings of the outlets read so far are kept: their energy is already booked.
      outcome.problems.push(error);
      // If the strip itself went away, the rest of its outlets will not answer either.
      if (error.code !== 'DEVICE_ERROR_REPLY' && error.code !== 'DEVICE_BAD_REPLY') return;
    }
  }
}

function addReading(
  context: PollContext,
  outcome: PollOutcome,
  consumer: string,
  device: DeviceDescription,
  outlet: OutletInfo | null,
  realtime: Realtime,
  ts: number,
  gaps: ReadingGap[],
): void {
  const deviceId = outlet?.device_id ?? device.device_id;
  try {
    checkPlausible(realtime, context.limits, deviceId);
  } catch (error) {
    if (error instanceof KasaError) {
      outcome.problems.push(error);
      return;
    }
    throw error;
  }
  const onTime = outlet === null ? device.on_time_s : outlet.on_time_s;
  const previousTs = context.tracker.baseline(energyKey(consumer, deviceId))?.ts;
  if (previousTs !== undefined && ts - previousTs > BACKFILL_GAP_MS) {
    gaps.push({
      device_id: deviceId,
      child_id: outlet?.device_id ?? null,
      from_ts: previousTs,
      to_ts: ts,
    });
  }
  outcome.readings.push({
    device_id: deviceId,
    ts,
    power_w: realtime.power_w,
    voltage_v: realtime.voltage_v,
    current_a: realtime.current_a,
    total_wh: realtime.total_wh,
    energy_wh: bookEnergy(context, outcome, consumer, deviceId, ts, realtime.total_wh, onTime),
    alias: outlet === null ? device.alias : outlet.alias,
    model: device.model,
    host: outcome.target.host,
    port: outcome.target.port,
    child_id: outlet?.child_id ?? null,
    relay_on: outlet === null ? device.relay_on : outlet.relay_on,
  });
}

/** Energy since `consumer`'s previous reading of the device, noting counter resets and glitches. */
function bookEnergy(
  context: PollContext,
  outcome: PollOutcome,
  consumer: string,
  deviceId: string,
  ts: number,
  totalWh: number | null,
  onTimeS: number | null,
): number | null {
  if (totalWh === null) return null;
  const step = context.tracker.next(energyKey(consumer, deviceId), {
    ts,
    total_wh: totalWh,
    on_time_s: onTimeS,
  });
  const kind = NOTICE_OF_EVENT[step.event];
  if (kind !== undefined) outcome.notices.push({ device_id: deviceId, kind });
  return step.energy_wh;
}

/** The energy tracker's key of a consumer's baseline of a device. */
function energyKey(consumer: string, deviceId: string): string {
  return consumer === '' ? deviceId : `${consumer}/${deviceId}`;
}

/**
 * Fills the whole days of an outage from the device's own day statistics, and takes their
 * energy out of the first reading after it, which otherwise carries the whole outage: every Wh
 * is then counted once, on its own day. When the device cannot tell, the reading keeps it all.
 */
async function backfill(
  context: PollContext,
  address: DeviceAddress,
  outcome: PollOutcome,
  gap: ReadingGap,
): Promise<void> {
  context.days ??= new LocalDays();
  let filled: DeviceDay[];
  try {
    filled = await fetchMissingDays(context.requester, address, gap, context.days);
  } catch (error) {
    if (!(error instanceof KasaError)) throw error;
    outcome.problems.push(
      new KasaError(
        'BACKFILL_FAILED',
        `${gap.device_id}: could not read its day statistics after an outage (${error.message}); the energy of the outage stays with the first reading after it`,
        { device_id: gap.device_id, cause_code: error.code },
        { cause: error },
      ),
    );
    return;
  }
  if (filled.length === 0) return;
  const reading = outcome.readings.find(
    (candidate) => candidate.device_id === gap.device_id && candidate.ts === gap.to_ts,
  );
  if (reading !== undefined && reading.energy_wh !== null) {
    const fromDevice = filled.reduce((sum, day) => sum + day.energy_wh, 0);
    reading.energy_wh = Math.round(Math.max(0, reading.energy_wh - fromDevice) * 1e6) / 1e6;
  }
  outcome.daily.push(...filled);
  outcome.notices.push({ device_id: gap.device_id, kind: 'backfilled', days: filled.length });
}

function descriptionSignature(
  device: DeviceDescription,
  target: PollTarget,
  hasEmeter: boolean,
): string {
  let signature = `${device.device_id}|${device.alias ?? ''}|${device.model ?? ''}|${device.hw_ver ?? ''}|${device.sw_ver ?? ''}|${device.mac ?? ''}|${target.host}|${target.port}|${hasEmeter ? 1 : 0}`;
  for (const outlet of device.outlets) signature += `|${outlet.child_id}:${outlet.alias ?? ''}`;
  return signature;
}

function deviceRows(
  device: DeviceDescription,
  target: PollTarget,
  hasEmeter: boolean,
): DeviceInfo[] {
  const base = {
    host: target.host,
    port: target.port,
    model: device.model,
    hw_ver: device.hw_ver,
    sw_ver: device.sw_ver,
    mac: device.mac,
  };
  const parent: DeviceInfo = {
    ...base,
    device_id: device.device_id,
    parent_id: null,
    child_id: null,
    alias: device.alias,
    // A strip's meters belong to its outlets; the strip itself has no series of its own.
    has_emeter: hasEmeter && device.outlets.length === 0,
  };
  const outlets = device.outlets.map((outlet): DeviceInfo => ({
    ...base,
    device_id: outlet.device_id,
    parent_id: device.device_id,
    child_id: outlet.child_id,
    alias: outlet.alias,
    has_emeter: hasEmeter,
  }));
  return [parent, ...outlets];
}
