import { KasaError } from '../errors';
import type { DeviceAddress } from '../protocol/transport';
import { methodReply, readDayStat } from '../readings/normalise';
import { LocalDays } from '../store/local-day';
import type { DeviceDay } from '../types';

/** A device that stayed away longer than this gets its missing days from its own statistics. */
export const BACKFILL_GAP_MS = 24 * 60 * 60 * 1000;

/** Days further back than this are past the daily tier's default horizon and not asked for. */
export const BACKFILL_MAX_DAYS = 366;

/** The one thing backfill needs of the device pool. */
export interface DayStatRequester {
  request(
    address: DeviceAddress,
    payload: Record<string, unknown>,
  ): Promise<Record<string, unknown>>;
}

/** A reading that came after a long silence of its device. */
export interface ReadingGap {
  device_id: string;
  /** The outlet's full child id on a strip (its requests carry it as context); null for plugs. */
  child_id: string | null;
  /** When the previous reading was taken and when this one was, ms since the epoch. */
  from_ts: number;
  to_ts: number;
}

/**
 * The local dates strictly between the days of `fromTs` and `toTs`: the whole days that had no
 * reading at all. At most the last {@link BACKFILL_MAX_DAYS} of them.
 */
export function missingDays(days: LocalDays, fromTs: number, toTs: number): string[] {
  const last = days.dayOf(toTs);
  const earliest = days.dayOf(toTs - BACKFILL_MAX_DAYS * BACKFILL_GAP_MS);
  let day = LocalDays.next(days.dayOf(fromTs));
  if (day < earliest) day = earliest;
  const missing: string[] = [];
  for (; day < last; day = LocalDays.next(day)) missing.push(day);
  return missing;
}

/**
 * Asks a device for its day statistics of the months a gap spans and returns the days the gap
 * left empty that the device has figures for, marked as coming from the device. A new plug's
 * empty lists give no days. One request per month, one after another (strips answer one request
 * at a time).
 *
 * @throws KasaError when the device does not answer or answers an error; the caller keeps the
 *   reading as it was, so nothing is lost.
 */
export async function fetchMissingDays(
  requester: DayStatRequester,
  address: DeviceAddress,
  gap: ReadingGap,
  days: LocalDays,
): Promise<DeviceDay[]> {
  const missing = missingDays(days, gap.from_ts, gap.to_ts);
  if (missing.length === 0) return [];
  const recorded = new Map<string, number>();
  for (const month of new Set(missing.map((day) => day.slice(0, 7)))) {
    const [year, monthNo] = month.split('-').map(Number) as [number, number];
    const reply = await requester.request(address, {
      ...(gap.child_id === null ? {} : { context: { child_ids: [gap.child_id] } }),
      emeter: { get_daystat: { year, month: monthNo } },
    });
    const listed = readDayStat(methodReply(reply, 'emeter', 'get_daystat'));
    if (listed === null) {
      throw new KasaError('NO_EMETER', `${gap.device_id} has no energy meter`, {
        device_id: gap.device_id,
      });
    }
    for (const entry of listed) recorded.set(entry.day, entry.energy_wh);
  }
  const filled: DeviceDay[] = [];
  for (const day of missing) {
    const energy = recorded.get(day);
    if (energy === undefined) continue;
    filled.push({
      device_id: gap.device_id,
      day,
      day_start: days.startOf(day),
      energy_wh: energy,
      source: 'device',
    });
  }
  return filled;
}
