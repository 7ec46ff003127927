/**
 * Local calendar days of an IANA time zone, as UTC milliseconds. A day runs from one local
 * midnight to the next, so days with a DST change last 23 or 25 hours.
 */
export class LocalDays {
  private readonly format: Intl.DateTimeFormat;
  private readonly starts = new Map<string, number>();

  /** @param timeZone IANA zone name; default: the system's zone. @throws RangeError if unknown. */
  constructor(readonly timeZone: string = systemTimeZone()) {
    this.format = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
  }

  /** The local date ('YYYY-MM-DD') of an instant (ms since the epoch). */
  dayOf(ms: number): string {
    let year = '';
    let month = '';
    let day = '';
    for (const part of this.format.formatToParts(ms)) {
      if (part.type === 'year') year = part.value;
      else if (part.type === 'month') month = part.value;
      else if (part.type === 'day') day = part.value;
    }
    return `${year}-${month}-${day}`;
  }

  /**
   * The first instant (ms, whole minutes) of a local date: its midnight, or the first minute
   * that exists when the zone skips midnight. Cached per date.
   */
  startOf(day: string): number {
    const cached = this.starts.get(day);
    if (cached !== undefined) return cached;
    const [year, month, date] = day.split('-').map(Number) as [number, number, number];
    // Every zone's offset lies within ±14 h, so local midnight is within this window; the local
    // date only grows with time, so a binary search over minutes finds its first minute.
    const base = Date.UTC(year, month - 1, date) - 14 * HOUR_MS;
    let low = 0;
    let high = 28 * 60;
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      if (this.dayOf(base + mid * MINUTE_MS) >= day) high = mid;
      else low = mid + 1;
    }
    const start = base + low * MINUTE_MS;
    this.starts.set(day, start);
    return start;
  }

  /** The local date after `day` ('YYYY-MM-DD'). */
  static next(day: string): string {
    const [year, month, date] = day.split('-').map(Number) as [number, number, number];
    return new Date(Date.UTC(year, month - 1, date + 1)).toISOString().slice(0, 10);
  }
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** The zone this process runs in, e.g. 'Europe/Berlin' (falls back to 'UTC'). */
export function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}
