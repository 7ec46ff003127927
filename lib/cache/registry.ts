import { type Clock, systemClock } from '../types';
import {
  DEFAULT_MAX_ENTRIES,
  DEFAULT_SECOND_LEVEL_TTL_MS,
  DEFAULT_TTL_MS,
  TwoLevelCache,
} from './two-level-cache';
import type { CacheStats, SecondLevelSource } from './types';

/** How a cache is built; nodes sharing a cache name should agree on it. */
export interface CacheSettings {
  /** Memory level size, entries. Default 1,000. */
  maxEntries?: number;
  /** Memory TTL, ms. Default 60,000. */
  ttlMs?: number;
  /** Where the second level comes from (a Redis connection); none by default. */
  secondLevel?: SecondLevelSource | null;
  /** Second-level TTL, ms. Default 300,000. */
  secondLevelTtlMs?: number;
}

/** One user's hold on a shared cache. */
export interface CacheLease {
  readonly name: string;
  /** The cache as it is now: a later user with other settings may have rebuilt it. */
  readonly cache: TwoLevelCache;
  /**
   * True when this lease rebuilt a cache that others were using with other settings (their
   * entries are gone and they now use this lease's settings).
   */
  readonly replacedOthers: boolean;
  /** Gives the cache back; the last release drops it. Idempotent. */
  release(): void;
}

interface Slot {
  name: string;
  cache: TwoLevelCache;
  settings: Required<CacheSettings>;
  leases: Set<Lease>;
}

/**
 * Caches by name, shared by every node that uses the same name in one runtime and reference-counted
 * by leases: the last release drops the cache, so nothing survives a redeploy that removed all its
 * users, and settings that changed rebuild it instead of serving entries kept under the old ones.
 */
export class CacheRegistry {
  private readonly slots = new Map<string, Slot>();

  constructor(private readonly clock: Clock = systemClock) {}

  /** @throws KasaError `CACHE_BAD_SETTING` for a size or TTL out of range. */
  acquire(name: string, settings: CacheSettings = {}): CacheLease {
    const wanted: Required<CacheSettings> = {
      maxEntries: settings.maxEntries ?? DEFAULT_MAX_ENTRIES,
      ttlMs: settings.ttlMs ?? DEFAULT_TTL_MS,
      secondLevel: settings.secondLevel ?? null,
      secondLevelTtlMs: settings.secondLevelTtlMs ?? DEFAULT_SECOND_LEVEL_TTL_MS,
    };
    let slot = this.slots.get(name);
    let replacedOthers = false;
    if (slot === undefined) {
      slot = { name, cache: this.build(name, wanted), settings: wanted, leases: new Set() };
      this.slots.set(name, slot);
    } else if (!sameSettings(slot.settings, wanted)) {
      const cache = this.build(name, wanted);
      slot.cache.close();
      slot.cache = cache;
      slot.settings = wanted;
      replacedOthers = slot.leases.size > 0;
    }
    const lease = new Lease(this, slot, replacedOthers);
    slot.leases.add(lease);
    return lease;
  }

  /** The cache called `name`, if any node uses it. */
  get(name: string): TwoLevelCache | undefined {
    return this.slots.get(name)?.cache;
  }

  /** Names of the caches in use. */
  names(): string[] {
    return [...this.slots.keys()];
  }

  /** Number of caches in use. */
  get size(): number {
    return this.slots.size;
  }

  /** Leases held on `name` (0 when unused). */
  users(name: string): number {
    return this.slots.get(name)?.leases.size ?? 0;
  }

  /** Counters of every cache in use, for metrics. */
  stats(): CacheStats[] {
    return [...this.slots.values()].map((slot) => slot.cache.stats());
  }

  /** @internal called by Lease.release */
  releaseLease(slot: Slot, lease: Lease): void {
    if (!slot.leases.delete(lease) || slot.leases.size > 0) return;
    if (this.slots.get(slot.name) === slot) this.slots.delete(slot.name);
    slot.cache.close();
  }

  private build(name: string, settings: Required<CacheSettings>): TwoLevelCache {
    return new TwoLevelCache({
      name,
      maxEntries: settings.maxEntries,
      ttlMs: settings.ttlMs,
      secondLevel: settings.secondLevel?.namespace(name) ?? null,
      secondLevelTtlMs: settings.secondLevelTtlMs,
      clock: this.clock,
    });
  }
}

class Lease implements CacheLease {
  private released = false;

  constructor(
    private readonly registry: CacheRegistry,
    private readonly slot: Slot,
    readonly replacedOthers: boolean,
  ) {}

  get name(): string {
    return this.slot.name;
  }

  get cache(): TwoLevelCache {
    return this.slot.cache;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.registry.releaseLease(this.slot, this);
  }
}

function sameSettings(a: Required<CacheSettings>, b: Required<CacheSettings>): boolean {
  return (
    a.maxEntries === b.maxEntries &&
    a.ttlMs === b.ttlMs &&
    a.secondLevel === b.secondLevel &&
    a.secondLevelTtlMs === b.secondLevelTtlMs
  );
}

/** The registry every cache node of this package shares. */
export const caches = new CacheRegistry();
