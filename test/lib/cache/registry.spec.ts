import assert from 'node:assert/strict';

import { CacheRegistry } from '../../../lib/cache/registry';
import type { SecondLevel, SecondLevelSource } from '../../../lib/cache/types';

const T0 = Date.parse('2024-05-01T12:00:00Z');

describe('CacheRegistry', function () {
  let registry: CacheRegistry;
  const clock = { now: () => T0 };

  beforeEach(function () {
    registry = new CacheRegistry(clock);
  });
  afterEach(function () {
    assert.equal(registry.size, 0, 'every test releases what it acquired');
  });

  it('shares one cache per name and drops it with the last release', async function () {
    const setter = registry.acquire('default');
    const getter = registry.acquire('default');
    const other = registry.acquire('other');
    assert.equal(setter.cache, getter.cache);
    assert.notEqual(setter.cache, other.cache);
    await setter.cache.set('plug', 42);
    assert.deepEqual(await getter.cache.get('plug'), {
      hit: true,
      value: 42,
      level: 1,
      ageMs: 0,
      storedAt: T0,
      expiresAt: T0 + 60_000,
    });
    assert.equal((await other.cache.get('plug')).hit, false, 'names do not share entries');
    assert.deepEqual(registry.names().sort(), ['default', 'other']);
    assert.equal(registry.users('default'), 2);
    setter.release();
    setter.release();
    assert.equal(registry.users('default'), 1, 'a second release of one lease does nothing');
    getter.release();
    other.release();
    const again = registry.acquire('default');
    assert.equal((await again.cache.get('plug')).hit, false, 'a new user starts empty');
    again.release();
  });

  it('rebuilds a cache whose settings changed, for every user of the name', async function () {
    const first = registry.acquire('c', { maxEntries: 10, ttlMs: 1000 });
    await first.cache.set('k', 1);
    assert.equal(first.replacedOthers, false);
    const same = registry.acquire('c', { maxEntries: 10, ttlMs: 1000 });
    assert.equal(same.replacedOthers, false);
    assert.equal((await same.cache.get('k')).hit, true);
    const changed = registry.acquire('c', { maxEntries: 20, ttlMs: 1000 });
    assert.equal(changed.replacedOthers, true);
    assert.equal(first.cache, changed.cache, 'earlier users see the rebuilt cache');
    assert.equal(first.cache.maxEntries, 20);
    assert.equal((await first.cache.get('k')).hit, false, 'nothing kept from the old settings');
    for (const lease of [first, same, changed]) lease.release();
    const alone = registry.acquire('c', { ttlMs: 5 });
    const rebuilt = registry.acquire('c', { ttlMs: 6 });
    assert.equal(rebuilt.replacedOthers, true);
    alone.release();
    rebuilt.release();
  });

  it('takes each cache its own second level by name, and reports stats of all', function () {
    const namespaces: string[] = [];
    const source: SecondLevelSource = {
      namespace(name) {
        namespaces.push(name);
        return { state: 'ready' } as unknown as SecondLevel;
      },
    };
    const a = registry.acquire('a', { secondLevel: source });
    const b = registry.acquire('b', { secondLevel: source });
    const plain = registry.acquire('plain');
    assert.deepEqual(namespaces, ['a', 'b']);
    assert.deepEqual(
      registry.stats().map((stats) => [stats.name, stats.l2?.state ?? null]),
      [
        ['a', 'ready'],
        ['b', 'ready'],
        ['plain', null],
      ],
    );
    for (const lease of [a, b, plain]) lease.release();
  });

  it('keeps the running cache when new settings are invalid', async function () {
    const lease = registry.acquire('c');
    await lease.cache.set('k', 1);
    assert.throws(() => registry.acquire('c', { ttlMs: -1 }), /TTL/);
    assert.equal((await lease.cache.get('k')).hit, true);
    lease.release();
  });
});
