/**
 * A cached value as it travels between levels. The store time and the expiry are absolute, so a
 * value copied from one level to another keeps its age and is never relabelled as new.
 */
export interface CacheEntry {
  /** The value as JSON text: every level holds a copy that no message can change afterwards. */
  json: string;
  /** When the value was stored, ms since the epoch (UTC). */
  storedAt: number;
  /** When the value stops being served, ms since the epoch (UTC). */
  expiresAt: number;
}

/**
 * How a second level is doing. `idle`: not used yet (connections are made lazily); `connecting`:
 * the first connection is being made; `ready`: in use; `down`: unreachable, failing or too slow,
 * skipped until it answers again; `closed`: shut.
 */
export type SecondLevelState = 'idle' | 'connecting' | 'ready' | 'down' | 'closed';

/**
 * The shared level behind the memory level (Redis). Each call settles within the level's own time
 * limit; a rejection means "not available", never a wrong answer.
 */
export interface SecondLevel {
  readonly state: SecondLevelState;
  /**
   * Whether a call made now would be answered. Synchronous when the answer is known; while the
   * first connection is being made it waits for it, at most the level's command timeout.
   */
  usable(): boolean | Promise<boolean>;
  get(key: string): Promise<CacheEntry | undefined>;
  set(key: string, entry: CacheEntry): Promise<void>;
  /** @returns whether the key was there. */
  delete(key: string): Promise<boolean>;
  /** Removes every key of this cache. @returns keys removed. */
  clear(): Promise<number>;
}

/** Something that hands out second levels by cache name, e.g. one Redis connection. */
export interface SecondLevelSource {
  /** The second level of the cache called `name`; its keys live apart from other names'. */
  namespace(name: string): SecondLevel;
}

/** Counters of one cache since it was created; `entries` is the memory level's current size. */
export interface CacheStats {
  name: string;
  /** Live entries in memory. */
  entries: number;
  maxEntries: number;
  /** Memory TTL, ms. */
  ttlMs: number;
  /** Memory level: hits and misses of `get`. */
  l1: { hits: number; misses: number };
  /** Second level, null without one. `skipped`: lookups not tried because it was unavailable. */
  l2: {
    state: SecondLevelState;
    hits: number;
    misses: number;
    skipped: number;
    errors: number;
  } | null;
  /** Entries pushed out of memory by the size limit. */
  evictions: number;
  /** Entries dropped from memory because their TTL had passed. */
  expirations: number;
  sets: number;
  deletes: number;
}
