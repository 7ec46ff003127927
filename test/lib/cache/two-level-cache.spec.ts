import assert from 'node:assert/strict';

import { isKasaError } from '../../../lib/errors';
import { TwoLevelCache } from '../../../lib/cache/two-level-cache';
import type { CacheEntry, SecondLevel, SecondLevelState } from '../../../lib/cache/types';

const T0 = Date.parse('2024-05-01T12:00:00Z');

/** Time that moves only when told. */
class ManualClock {
  time = T0;
  now = () => this.time;
  advance(ms: number): void {
    this.time += ms;
  }
}

/** An in-memory second level whose availability and failures the test controls. */
class FakeSecondLevel implements SecondLevel {
  state: SecondLevelState = 'ready';
  readonly entries = new Map<string, CacheEntry>();
  failNext = false;
  calls = 0;
  constructor(private readonly clock: ManualClock) {}
  usable(): boolean {
    return this.state === 'ready';
  }
  private call(): void {
    this.calls += 1;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('connection lost');
    }
  }
  get(key: string): Promise<CacheEntry | undefined> {
    this.call();
    const entry = this.entries.get(key);
    return Promise.resolve(entry && entry.expiresAt > this.clock.now() ? { ...entry } : undefined);
  }
  set(key: string, entry: CacheEntry): Promise<void> {
    this.call();
    this.entries.set(key, { ...entry });
    return Promise.resolve();
  }
  delete(key: string): Promise<boolean> {
    this.call();
    return Promise.resolve(this.entries.delete(key));
  }
  clear(): Promise<number> {
    this.call();
    const count = this.entries.size;
    this.entries.clear();
    return Promise.resolve(count);
  }
}

const reading = (power: number, ts: number) => ({ device_id: 'D3', ts, power_w: power });

describe('TwoLevelCache', function () {
  let clock: ManualClock;

  beforeEach(function () {
    clock = new ManualClock();
  });

  describe('memory level', function () {
    it('returns a stored value with its level and age, and a miss for an unknown key', async function () {
      const cache = new TwoLevelCache({ clock });
      await cache.set('plug', { power_w: 12.5 });
      clock.advance(1500);
      assert.deepEqual(await cache.get('plug'), {
        hit: true,
        value: { power_w: 12.5 },
        level: 1,
        ageMs: 1500,
        storedAt: T0,
        expiresAt: T0 + 60_000,
      });
      assert.deepEqual(await cache.get('other'), { hit: false });
      const stats = cache.stats();
      assert.deepEqual(stats.l1, { hits: 1, misses: 1 });
      assert.equal(stats.entries, 1);
      assert.equal(stats.l2, null);
    });

    it('keeps its own copy: changing the stored or the returned object changes nothing cached', async function () {
      const cache = new TwoLevelCache({ clock });
      const value = { power_w: 5, nested: { on: true } };
      await cache.set('plug', value);
      value.nested.on = false;
      const first = await cache.get('plug');
      assert.ok(first.hit);
      (first.value as { power_w: number }).power_w = 999;
      const second = await cache.get('plug');
      assert.ok(second.hit);
      assert.deepEqual(second.value, { power_w: 5, nested: { on: true } });
    });

    it('never serves a value at or past its TTL, and a per-value TTL overrides the default', async function () {
      const cache = new TwoLevelCache({ clock, ttlMs: 10_000 });
      await cache.set('default', 1);
      await cache.set('short', 2, 2000);
      clock.advance(1999);
      assert.equal((await cache.get('short')).hit, true);
      clock.advance(1);
      assert.equal((await cache.get('short')).hit, false, 'gone exactly at its TTL');
      clock.advance(7999);
      assert.equal((await cache.get('default')).hit, true);
      clock.advance(1);
      assert.equal((await cache.get('default')).hit, false);
      const stats = cache.stats();
      assert.equal(stats.entries, 0);
      assert.equal(stats.expirations, 2);
      assert.deepEqual(stats.l1, { hits: 2, misses: 2 });
    });

    it('keeps to its size limit, evicting the least recently used entry first', async function () {
      const cache = new TwoLevelCache({ clock, maxEntries: 3 });
      for (const key of ['a', 'b', 'c']) await cache.set(key, key);
      assert.equal((await cache.get('a')).hit, true, 'a is now the most recently used');
      await cache.set('d', 'd');
      assert.equal(cache.stats().entries, 3);
      assert.equal((await cache.get('b')).hit, false, 'b was the least recently used');
      for (const key of ['a', 'c', 'd']) assert.equal((await cache.get(key)).hit, true, key);
      assert.equal(cache.stats().evictions, 1);
    });

    it('deletes one key and clears everything, reporting what was there', async function () {
      const cache = new TwoLevelCache({ clock });
      await cache.set('a', 1);
      await cache.set('b', 2);
      await cache.set('c', 3, 100);
      assert.equal(await cache.delete('a'), true);
      assert.equal(await cache.delete('a'), false);
      clock.advance(100);
      assert.equal(await cache.delete('c'), false, 'an expired value does not count as deleted');
      assert.deepEqual(await cache.clear(), { memory: 1, secondLevel: null });
      assert.equal((await cache.get('b')).hit, false);
      assert.equal(cache.stats().deletes, 3);
    });

    it('refuses bad keys, non-JSON values and bad TTLs with coded errors', async function () {
      const cache = new TwoLevelCache({ clock });
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      const cases: [() => Promise<unknown>, string][] = [
        [() => cache.set('', 1), 'CACHE_BAD_KEY'],
        [() => cache.get(42 as unknown as string), 'CACHE_BAD_KEY'],
        [() => cache.set('k', undefined), 'CACHE_BAD_VALUE'],
        [() => cache.set('k', circular), 'CACHE_BAD_VALUE'],
        [() => cache.set('k', 10n), 'CACHE_BAD_VALUE'],
        [() => cache.set('k', 1, 0), 'CACHE_BAD_TTL'],
        [() => cache.set('k', 1, Number.NaN), 'CACHE_BAD_TTL'],
        [() => cache.set('k', 1, 400 * 24 * 3600 * 1000), 'CACHE_BAD_TTL'],
      ];
      for (const [call, code] of cases) {
        await assert.rejects(call, (error) => isKasaError(error) && error.code === code);
      }
      assert.throws(
        () => new TwoLevelCache({ maxEntries: 0 }),
        (error) => isKasaError(error) && error.code === 'CACHE_BAD_SETTING',
      );
      assert.equal(cache.stats().sets, 0);
    });
  });

  describe('case-026: a cached value is not presented as current', function () {
    it('serves the last value with its original time until the TTL, then misses', async function () {
      // Cache TTL 10 s, 4 entries; D3 answers 80 W (80000 mW) every 2 s until t = 20 s.
      const cache = new TwoLevelCache({ clock, ttlMs: 10_000, maxEntries: 4 });
      for (let t = 0; t <= 20_000; t += 2000) {
        clock.time = T0 + t;
        await cache.set('D3', reading(80_000 / 1000, T0 + t));
      }
      clock.time = T0 + 25_000;
      const at25 = await cache.get('D3');
      assert.ok(at25.hit);
      assert.deepEqual(at25.value, reading(80, T0 + 20_000), 'the reading of t = 20 s, unchanged');
      assert.equal(at25.ageMs, 5000, 'its age, not relabelled as new');
      assert.equal(at25.storedAt, T0 + 20_000);
      clock.time = T0 + 35_000;
      assert.deepEqual(await cache.get('D3'), { hit: false }, 'past its TTL: a miss');
    });

    it('holds at most 4 of 6 devices polled every 2 s, each hit honest about its age', async function () {
      const cache = new TwoLevelCache({ clock, ttlMs: 10_000, maxEntries: 4 });
      const devices = ['D1', 'D2', 'D3', 'D4', 'D5', 'D6'];
      const stoppedAt = 20_000;
      let hits = 0;
      for (let t = 0; t <= 40_000; t += 2000) {
        clock.time = T0 + t;
        for (const device of devices) {
          if (device === 'D3' && t > stoppedAt) continue;
          await cache.set(device, {
            ...reading(device === 'D3' ? 80 : 10, T0 + t),
            device_id: device,
          });
          assert.ok(cache.stats().entries <= 4, `${cache.stats().entries} entries at t = ${t}`);
        }
        for (const device of devices) {
          const found = await cache.get(device);
          if (!found.hit) continue;
          hits += 1;
          const value = found.value as { ts: number };
          assert.equal(found.ageMs, clock.now() - value.ts, `${device} at t = ${t}: honest age`);
          assert.ok(found.ageMs < 10_000, `${device} at t = ${t}: within its TTL`);
          if (device === 'D3') assert.ok(t - stoppedAt < 10_000, 'D3 is not served after its TTL');
        }
      }
      assert.ok(hits > 0);
      assert.ok(cache.stats().evictions > 0, 'the loop forced evictions');
    });
  });

  describe('second level', function () {
    it('writes through, and promotes a second-level hit with its original age and expiry', async function () {
      const level2 = new FakeSecondLevel(clock);
      const writer = new TwoLevelCache({ clock, secondLevel: level2, secondLevelTtlMs: 300_000 });
      await writer.set('plug', { power_w: 7 });
      assert.deepEqual(level2.entries.get('plug'), {
        json: '{"power_w":7}',
        storedAt: T0,
        expiresAt: T0 + 300_000,
      });
      // Another runtime: same second level, empty memory.
      const reader = new TwoLevelCache({ clock, ttlMs: 60_000, secondLevel: level2 });
      clock.advance(90_000);
      const first = await reader.get('plug');
      assert.deepEqual(first, {
        hit: true,
        value: { power_w: 7 },
        level: 2,
        ageMs: 90_000,
        storedAt: T0,
        expiresAt: T0 + 300_000,
      });
      clock.advance(1000);
      const second = await reader.get('plug');
      assert.ok(second.hit);
      assert.equal(second.level, 1, 'promoted to memory');
      assert.equal(second.ageMs, 91_000, 'keeps its age');
      assert.equal(second.storedAt, T0);
      assert.equal(second.expiresAt, T0 + 150_000, 'memory keeps it for at most its memory TTL');
      const stats = reader.stats();
      assert.deepEqual(stats.l1, { hits: 1, misses: 1 });
      assert.deepEqual(stats.l2, { state: 'ready', hits: 1, misses: 0, skipped: 0, errors: 0 });
    });

    it('never promotes beyond the second-level expiry, and a per-value TTL covers both levels', async function () {
      const level2 = new FakeSecondLevel(clock);
      const writer = new TwoLevelCache({ clock, secondLevel: level2 });
      await writer.set('short', 'x', 5000);
      assert.equal(level2.entries.get('short')?.expiresAt, T0 + 5000);
      const reader = new TwoLevelCache({ clock, ttlMs: 60_000, secondLevel: level2 });
      clock.advance(4000);
      const found = await reader.get('short');
      assert.ok(found.hit);
      assert.equal(found.level, 2);
      clock.advance(1000);
      assert.deepEqual(await reader.get('short'), { hit: false }, 'the promoted copy expires too');
    });

    it('does not overwrite a newer value in memory with an older one from the second level', async function () {
      const level2 = new FakeSecondLevel(clock);
      const cache = new TwoLevelCache({ clock, secondLevel: level2 });
      level2.entries.set('k', { json: '"old"', storedAt: T0 - 1000, expiresAt: T0 + 60_000 });
      const lookup = cache.get('k');
      await cache.set('k', 'new');
      assert.equal(((await lookup) as { value: unknown }).value, 'old');
      const again = await cache.get('k');
      assert.ok(again.hit);
      assert.deepEqual([again.level, again.value], [1, 'new']);
    });

    it('keeps working on memory while the second level is down or failing, and uses it again after', async function () {
      const level2 = new FakeSecondLevel(clock);
      const cache = new TwoLevelCache({ clock, secondLevel: level2 });
      level2.state = 'down';
      await cache.set('a', 1);
      assert.equal(level2.entries.size, 0, 'not written while down');
      assert.equal(level2.calls, 0, 'not even tried');
      assert.equal(((await cache.get('a')) as { level: number }).level, 1);
      assert.deepEqual(await cache.get('missing'), { hit: false });
      level2.state = 'ready';
      level2.failNext = true;
      await cache.set('b', 2);
      assert.equal((await cache.get('b')).hit, true, 'a failed write still lands in memory');
      level2.failNext = true;
      assert.deepEqual(await cache.get('gone'), { hit: false }, 'a failed read is a miss');
      await cache.set('c', 3);
      assert.ok(level2.entries.has('c'), 'used again once it answers');
      assert.deepEqual(cache.stats().l2, {
        state: 'ready',
        hits: 0,
        misses: 0,
        skipped: 1,
        errors: 2,
      });
    });

    it('deletes and clears on both levels', async function () {
      const level2 = new FakeSecondLevel(clock);
      const cache = new TwoLevelCache({ clock, secondLevel: level2 });
      await cache.set('a', 1);
      await cache.set('b', 2);
      level2.entries.set('only-there', { json: '1', storedAt: T0, expiresAt: T0 + 1000 });
      assert.equal(await cache.delete('only-there'), true);
      assert.equal(await cache.delete('a'), true);
      assert.deepEqual([...level2.entries.keys()], ['b']);
      assert.deepEqual(await cache.clear(), { memory: 1, secondLevel: 1 });
      assert.equal(level2.entries.size, 0);
      assert.deepEqual(await cache.get('b'), { hit: false });
    });
  });
});
