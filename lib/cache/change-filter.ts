import { LRUCache } from 'lru-cache';

import { type Clock, systemClock } from '../types';
import { DEFAULT_MAX_ENTRIES, DEFAULT_TTL_MS } from './two-level-cache';

export interface ChangeFilterOptions {
  /** A reading counts as unchanged while `power_w` stays within this many W. Default 0. */
  deadbandW?: number;
  /** Keys remembered, least recently used forgotten first. Default 1,000. */
  maxEntries?: number;
  /** How long a passed value is remembered, ms; after that the next value passes. Default 60,000. */
  ttlMs?: number;
  clock?: Clock;
}

interface ReadingSummary {
  id: unknown;
  power: unknown;
  relay: unknown;
}

interface Reference {
  /** For readings (one or an array): what is compared. */
  readings: ReadingSummary[] | null;
  /** For anything else: the JSON text. */
  json: string | null;
  /** ms since the epoch. */
  expiresAt: number;
}

/**
 * Decides whether a value differs from the last one let through under the same key, for "only
 * pass changed values". Readings (objects with `power_w`, or arrays of them) are compared by
 * device, relay state and power within the deadband; timestamps, counters, voltage and current
 * are not compared, since they change on every poll. Anything else must be JSON-identical. The
 * reference is the last value let through, not the last one seen, so slow drift still passes once
 * it adds up to more than the deadband; it is forgotten after the TTL, so an unchanged value still
 * passes once per TTL.
 */
export class ChangeFilter {
  private readonly deadbandW: number;
  private readonly ttlMs: number;
  private readonly clock: Clock;
  private readonly seen: LRUCache<string, Reference>;

  constructor(options: ChangeFilterOptions = {}) {
    this.deadbandW = Math.max(0, options.deadbandW ?? 0);
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    const clock = (this.clock = options.clock ?? systemClock);
    this.seen = new LRUCache<string, Reference>({
      max: options.maxEntries ?? DEFAULT_MAX_ENTRIES,
      ttl: this.ttlMs,
      perf: { now: () => clock.now() },
      ttlResolution: 0,
    });
  }

  /**
   * Whether `value` should pass for `key`; if so it becomes the new reference.
   *
   * @param ttlMs how long to remember it, ms. Default: the filter's TTL.
   */
  changed(key: string, value: unknown, ttlMs?: number): boolean {
    const now = this.clock.now();
    const ttl = Math.max(1, Math.ceil(ttlMs ?? this.ttlMs));
    const next = reference(value, now + ttl);
    const previous = this.seen.get(key);
    if (previous !== undefined && previous.expiresAt > now && this.same(previous, next)) {
      return false;
    }
    this.seen.set(key, next, { ttl });
    return true;
  }

  /** Forgets `key`, or everything without one, so the next value passes. */
  forget(key?: string): void {
    if (key === undefined) this.seen.clear();
    else this.seen.delete(key);
  }

  private same(a: Reference, b: Reference): boolean {
    if (a.readings === null || b.readings === null) {
      return a.readings === b.readings && a.json === b.json;
    }
    const afterList = b.readings;
    if (a.readings.length !== afterList.length) return false;
    return a.readings.every((before, index) => {
      const after = afterList[index];
      if (after === undefined) return false;
      if (before.id !== after.id || before.relay !== after.relay) return false;
      if (typeof before.power === 'number' && typeof after.power === 'number') {
        return Math.abs(after.power - before.power) <= this.deadbandW;
      }
      return before.power === after.power;
    });
  }
}

function isReading(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'power_w' in value;
}

function summary(reading: Record<string, unknown>): ReadingSummary {
  return { id: reading.device_id, power: reading.power_w, relay: reading.relay_on };
}

function reference(value: unknown, expiresAt: number): Reference {
  if (isReading(value)) return { readings: [summary(value)], json: null, expiresAt };
  if (Array.isArray(value) && value.length > 0 && value.every(isReading)) {
    return { readings: value.map(summary), json: null, expiresAt };
  }
  return { readings: null, json: JSON.stringify(value), expiresAt };
}
