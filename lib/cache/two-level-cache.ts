import { LRUCache } from 'lru-cache';

import { errorMessage, KasaError } from '../errors';
import { type Clock, systemClock } from '../types';
import type { CacheEntry, CacheStats, SecondLevel } from './types';

/** Default size of the memory level, entries. */
export const DEFAULT_MAX_ENTRIES = 1000;
/** Default memory TTL, ms. */
export const DEFAULT_TTL_MS = 60_000;
/** Default second-level TTL, ms. */
export const DEFAULT_SECOND_LEVEL_TTL_MS = 300_000;
/** Longest TTL accepted, ms (one year): anything longer is a unit mistake. */
export const MAX_TTL_MS = 365 * 24 * 3600 * 1000;
/** Largest memory level accepted, entries. */
export const MAX_ENTRIES_LIMIT = 10_000_000;

export interface TwoLevelCacheOptions {
  /** The cache's name, in its stats and its second-level keys. Default `default`. */
  name?: string;
  /** Size limit of the memory level, entries. Default 1,000. */
  maxEntries?: number;
  /** How long the memory level serves a value, ms. Default 60,000. */
  ttlMs?: number;
  /** Shared level behind memory (Redis). Default none. */
  secondLevel?: SecondLevel | null;
  /** How long the second level keeps a value, ms. Default 300,000. */
  secondLevelTtlMs?: number;
  clock?: Clock;
}

export interface CacheHit {
  hit: true;
  /** A fresh copy of the stored value. */
  value: unknown;
  /** 1: memory, 2: second level. */
  level: 1 | 2;
  /** Time since the value was stored (wherever that was), ms. */
  ageMs: number;
  /** ms since the epoch. */
  storedAt: number;
  /** ms since the epoch: the value is not served from this level after it. */
  expiresAt: number;
}

export type CacheLookup = CacheHit | { hit: false };

export interface ClearResult {
  /** Entries removed from memory. */
  memory: number;
  /** Keys removed from the second level; null without one or while it is unavailable. */
  secondLevel: number | null;
}

const MISS: CacheLookup = Object.freeze({ hit: false });

/**
 * A memory level (lru-cache: size limit, TTL, least recently used evicted first) in front of an
 * optional shared second level. Values are JSON; each entry carries its store time and expiry, so
 * a value past its TTL is never served and a value promoted from the second level keeps its age.
 * A failing second level only costs its hits: every call still works on memory.
 */
export class TwoLevelCache {
  readonly name: string;
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly secondLevelTtlMs: number;
  readonly secondLevel: SecondLevel | null;
  private readonly clock: Clock;
  private readonly memory: LRUCache<string, CacheEntry>;
  // Bumped by delete and clear, so a second-level answer that raced them is not promoted.
  private generation = 0;
  private closed = false;
  private readonly counters = {
    l1Hits: 0,
    l1Misses: 0,
    l2Hits: 0,
    l2Misses: 0,
    l2Skipped: 0,
    l2Errors: 0,
    evictions: 0,
    expirations: 0,
    sets: 0,
    deletes: 0,
  };

  /** @throws KasaError `CACHE_BAD_SETTING` for a size or TTL out of range. */
  constructor(options: TwoLevelCacheOptions = {}) {
    this.name = options.name ?? 'default';
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (
      !Number.isInteger(this.maxEntries) ||
      this.maxEntries < 1 ||
      this.maxEntries > MAX_ENTRIES_LIMIT
    ) {
      throw new KasaError('CACHE_BAD_SETTING', `maxEntries must be 1-${MAX_ENTRIES_LIMIT}`, {
        setting: 'maxEntries',
        value: String(options.maxEntries),
      });
    }
    this.ttlMs = checkTtl(options.ttlMs ?? DEFAULT_TTL_MS, 'CACHE_BAD_SETTING');
    this.secondLevelTtlMs = checkTtl(
      options.secondLevelTtlMs ?? DEFAULT_SECOND_LEVEL_TTL_MS,
      'CACHE_BAD_SETTING',
    );
    this.secondLevel = options.secondLevel ?? null;
    this.clock = options.clock ?? systemClock;
    const clock = this.clock;
    this.memory = new LRUCache<string, CacheEntry>({
      max: this.maxEntries,
      ttl: this.ttlMs,
      // lru-cache's own clock and its 1 ms "now" cache would leave timers behind and ignore an
      // injected clock; expiry follows ours.
      perf: { now: () => clock.now() },
      ttlResolution: 0,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.counters.evictions += 1;
        else if (reason === 'expire') this.counters.expirations += 1;
      },
    });
  }

  /**
   * Stores a copy of `value` in memory and, when the second level is available, there too.
   *
   * @param ttlMs overrides both levels' TTL for this value, ms.
   * @throws KasaError `CACHE_BAD_KEY`, `CACHE_BAD_VALUE` (not JSON), `CACHE_BAD_TTL`.
   */
  async set(key: string, value: unknown, ttlMs?: number): Promise<void> {
    checkKey(key);
    const json = toJson(value);
    if (ttlMs !== undefined) checkTtl(ttlMs, 'CACHE_BAD_TTL');
    if (this.closed) return;
    const now = this.clock.now();
    const memoryTtl = Math.ceil(ttlMs ?? this.ttlMs);
    this.memory.set(key, { json, storedAt: now, expiresAt: now + memoryTtl }, { ttl: memoryTtl });
    this.counters.sets += 1;
    const level = this.secondLevel;
    if (level === null || !(await level.usable())) return;
    try {
      await level.set(key, {
        json,
        storedAt: now,
        expiresAt: now + (ttlMs ?? this.secondLevelTtlMs),
      });
    } catch {
      this.counters.l2Errors += 1;
    }
  }

  /**
   * Looks `key` up in memory, then in the second level; a second-level hit is copied into memory
   * with its original store time, for at most the memory TTL and never past its own expiry.
   *
   * @throws KasaError `CACHE_BAD_KEY`.
   */
  async get(key: string): Promise<CacheLookup> {
    checkKey(key);
    const now = this.clock.now();
    const entry = this.memory.get(key);
    if (entry !== undefined) {
      if (entry.expiresAt > now) {
        this.counters.l1Hits += 1;
        return hit(entry, 1, now);
      }
      this.memory.delete(key);
      this.counters.expirations += 1;
    }
    this.counters.l1Misses += 1;
    const level = this.secondLevel;
    if (level === null || this.closed) return MISS;
    if (!(await level.usable())) {
      this.counters.l2Skipped += 1;
      return MISS;
    }
    const generation = this.generation;
    let found: CacheEntry | undefined;
    try {
      found = await level.get(key);
    } catch {
      this.counters.l2Errors += 1;
      return MISS;
    }
    const later = this.clock.now();
    if (found === undefined || found.expiresAt <= later) {
      this.counters.l2Misses += 1;
      return MISS;
    }
    this.counters.l2Hits += 1;
    const current = this.memory.peek(key);
    if (
      this.isOpen() &&
      generation === this.generation &&
      (current === undefined || current.storedAt < found.storedAt)
    ) {
      const expiresAt = Math.min(found.expiresAt, later + this.ttlMs);
      this.memory.set(key, { ...found, expiresAt }, { ttl: Math.max(1, expiresAt - later) });
    }
    return hit(found, 2, later);
  }

  /**
   * Removes `key` from both levels (from memory only while the second level is unavailable).
   *
   * @returns whether a live value was there.
   * @throws KasaError `CACHE_BAD_KEY`.
   */
  async delete(key: string): Promise<boolean> {
    checkKey(key);
    this.generation += 1;
    this.counters.deletes += 1;
    const entry = this.memory.peek(key);
    const inMemory = entry !== undefined && entry.expiresAt > this.clock.now();
    this.memory.delete(key);
    const level = this.secondLevel;
    if (level === null || !(await level.usable())) return inMemory;
    try {
      return (await level.delete(key)) || inMemory;
    } catch {
      this.counters.l2Errors += 1;
      return inMemory;
    }
  }

  /** Empties memory and this cache's keys of the second level (memory only while unavailable). */
  async clear(): Promise<ClearResult> {
    this.generation += 1;
    this.memory.purgeStale();
    const memory = this.memory.size;
    this.memory.clear();
    const level = this.secondLevel;
    if (level === null || !(await level.usable())) return { memory, secondLevel: null };
    try {
      return { memory, secondLevel: await level.clear() };
    } catch {
      this.counters.l2Errors += 1;
      return { memory, secondLevel: null };
    }
  }

  /** A snapshot of the counters (expired entries are dropped first, so `entries` is live ones). */
  stats(): CacheStats {
    this.memory.purgeStale();
    const c = this.counters;
    return {
      name: this.name,
      entries: this.memory.size,
      maxEntries: this.maxEntries,
      ttlMs: this.ttlMs,
      l1: { hits: c.l1Hits, misses: c.l1Misses },
      l2:
        this.secondLevel === null
          ? null
          : {
              state: this.secondLevel.state,
              hits: c.l2Hits,
              misses: c.l2Misses,
              skipped: c.l2Skipped,
              errors: c.l2Errors,
            },
      evictions: c.evictions,
      expirations: c.expirations,
      sets: c.sets,
      deletes: c.deletes,
    };
  }

  // A method, not the field: the field's narrowing would survive the awaits that can change it.
  private isOpen(): boolean {
    return !this.closed;
  }

  /** Drops the memory level; later calls store nothing and miss. The second level is not touched. */
  close(): void {
    this.closed = true;
    this.memory.clear();
  }
}

// JSON.stringify's declared type hides that it returns undefined for undefined and functions.
const stringify: (value: unknown) => string | undefined = JSON.stringify;

function hit(entry: CacheEntry, level: 1 | 2, now: number): CacheHit {
  return {
    hit: true,
    value: JSON.parse(entry.json) as unknown,
    level,
    ageMs: Math.max(0, now - entry.storedAt),
    storedAt: entry.storedAt,
    expiresAt: entry.expiresAt,
  };
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key === '') {
    throw new KasaError('CACHE_BAD_KEY', `a cache key must be a non-empty string`, {
      key: typeof key === 'string' ? '""' : String(key),
    });
  }
}

function checkTtl(ms: number, code: 'CACHE_BAD_TTL' | 'CACHE_BAD_SETTING'): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0 || ms > MAX_TTL_MS) {
    throw new KasaError(code, `a TTL must be more than 0 and at most ${MAX_TTL_MS} ms`, {
      setting: 'ttl',
      value: String(ms),
    });
  }
  return ms;
}

/** @throws KasaError `CACHE_BAD_VALUE` for undefined, functions, cycles, BigInt. */
export function toJson(value: unknown): string {
  let json: string | undefined;
  try {
    json = stringify(value);
  } catch (error) {
    throw new KasaError('CACHE_BAD_VALUE', `the value is not JSON: ${errorMessage(error)}`, {
      cause: errorMessage(error),
    });
  }
  if (json === undefined) {
    throw new KasaError('CACHE_BAD_VALUE', `the value is not JSON: ${typeof value}`, {
      cause: typeof value,
    });
  }
  return json;
}
