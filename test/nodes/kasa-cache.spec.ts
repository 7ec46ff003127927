import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import Redis from 'ioredis';

import { collect, delay, helper } from '../support/node-helper';
import { type RedisServer, startRedisServer } from '../support/redis-server';

// The registry instance the built nodes use (dist/), not a second copy compiled by tsx.
const { caches } = require('../../dist/lib/cache/registry.js') as {
  caches: {
    size: number;
    names(): string[];
    get(name: string): { stats(): import('../../lib/cache/types').CacheStats } | undefined;
  };
};
const loadNodes = [
  require('../../dist/nodes/kasa-cache.js'),
  require('../../dist/nodes/kasa-redis.js'),
  require('@node-red/nodes/core/common/25-catch.js'),
] as Parameters<typeof helper.load>[0];

const ROOT = join(__dirname, '..', '..');

function cacheNode(id: string, props: Record<string, unknown>, wires: string[][]) {
  return {
    id,
    type: 'kasa-cache',
    z: 'tab',
    x: 200,
    y: 100,
    name: '',
    cache: 'default',
    mode: 'set',
    property: 'topic',
    maxEntries: 1000,
    ttl: 60,
    redis: '',
    onlyChanged: false,
    deadband: 0,
    wires,
    ...props,
  };
}

const out = (id: string) => ({ id, type: 'helper', z: 'tab', x: 400, y: 100, wires: [] });
const catcher = [
  { id: 'catcher', type: 'catch', z: 'tab', x: 100, y: 300, scope: null, wires: [['caught']] },
  out('caught'),
];

/** A setter and a getter on one cache name, with hit / miss / pass-through outputs. */
function setGetFlow(setter: Record<string, unknown> = {}, getter: Record<string, unknown> = {}) {
  return [
    { id: 'tab', type: 'tab', label: 'cache' },
    cacheNode('setter', setter, [['passed']]),
    cacheNode('getter', { mode: 'get', outputs: 2, ...getter }, [['hitOut'], ['missOut']]),
    out('passed'),
    out('hitOut'),
    out('missOut'),
    ...catcher,
  ];
}

interface Call {
  thisValue: unknown;
  args: any[];
}

/** Calls of a node method on this node only: the helper spies on the shared prototype. */
function callsOf(id: string, method: 'status' | 'warn' | 'error' | 'log'): any[][] {
  const node = helper.getNode(id);
  const spies = node as unknown as Record<typeof method, { getCalls(): Call[] }>;
  return spies[method]
    .getCalls()
    .filter((call) => call.thisValue === node)
    .map((call) => call.args);
}

const lastStatus = (id: string): { fill?: string; shape?: string; text?: string } =>
  callsOf(id, 'status').at(-1)?.[0] ?? {};

/** Sends a message and waits until the node has called done for it. */
function send(id: string, msg: Record<string, unknown>): Promise<unknown> {
  const node = helper.getNode(id) as unknown as {
    _complete: (msg: unknown, error: unknown) => void;
    receive(msg: unknown): void;
  };
  return new Promise((resolve) => {
    const original = node._complete;
    node._complete = function (this: unknown, done: unknown, error: unknown) {
      node._complete = original;
      original.call(this, done, error);
      resolve(error);
    };
    node.receive(msg);
  });
}

function handles(): { Timeout: number; TCPSocketWrap: number } {
  const counts = { Timeout: 0, TCPSocketWrap: 0 };
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'Timeout' || kind === 'TCPSocketWrap') counts[kind] += 1;
  }
  return counts;
}

describe('kasa-cache node', function () {
  this.timeout(20_000);

  before(function (done) {
    helper.startServer(done);
  });
  afterEach(async function () {
    await helper.unload();
    assert.equal(caches.size, 0, 'every cache is dropped with its last node');
  });
  after(function (done) {
    helper.stopServer(done);
  });

  it('shares entries between a set node and a get node of the same cache name', async function () {
    await helper.load(loadNodes, setGetFlow());
    const passed = collect(helper.getNode('passed'), 1);
    await send('setter', { topic: 'plug-1', payload: { power_w: 42.5 }, extra: 'kept' });
    const [stored] = await passed;
    assert.deepEqual(
      [stored.topic, stored.payload, stored.extra],
      ['plug-1', { power_w: 42.5 }, 'kept'],
    );
    assert.equal(stored.cache, undefined, 'set passes the message on as it came');

    const hits = collect(helper.getNode('hitOut'), 1);
    await send('getter', { topic: 'plug-1', payload: 'ignored', _req: 'r1' });
    const [hit] = await hits;
    assert.deepEqual(hit.payload, { power_w: 42.5 });
    assert.equal(hit._req, 'r1', 'the rest of the request message rides along');
    assert.equal(hit.cache.hit, true);
    assert.equal(hit.cache.level, 1);
    assert.ok(hit.cache.age_ms >= 0 && hit.cache.age_ms < 1000, `age ${hit.cache.age_ms}`);

    const misses = collect(helper.getNode('missOut'), 1);
    await send('getter', { topic: 'plug-2', payload: 'asked' });
    const [miss] = await misses;
    assert.deepEqual([miss.topic, miss.payload, miss.cache], ['plug-2', 'asked', undefined]);
    assert.deepEqual(caches.names(), ['default']);
  });

  it('keeps cache names apart and takes the key from the configured property', async function () {
    await helper.load(
      loadNodes,
      setGetFlow(
        { cache: 'readings', property: 'payload.device_id' },
        { cache: 'other', property: 'key' },
      ),
    );
    await send('setter', { payload: { device_id: 'abc', power_w: 1 } });
    const misses = collect(helper.getNode('missOut'), 1);
    await send('getter', { key: 'abc' });
    assert.equal((await misses)[0].key, 'abc', 'another cache name has its own entries');
    assert.deepEqual(caches.names().sort(), ['other', 'readings']);
  });

  it('honours msg.ttl and never serves a value past its TTL', async function () {
    await helper.load(loadNodes, setGetFlow());
    await send('setter', { topic: 'short', payload: 1, ttl: 150 });
    await send('setter', { topic: 'long', payload: 2 });
    await delay(200);
    const misses = collect(helper.getNode('missOut'), 1);
    const hits = collect(helper.getNode('hitOut'), 1);
    await send('getter', { topic: 'short' });
    await send('getter', { topic: 'long' });
    assert.equal((await misses)[0].topic, 'short');
    assert.equal((await hits)[0].payload, 2);
  });

  it('deletes a key and clears the cache by message', async function () {
    await helper.load(loadNodes, [
      ...setGetFlow(),
      cacheNode('deleter', { mode: 'delete' }, [['deleted']]),
      cacheNode('clearer', { mode: 'clear' }, [['cleared']]),
      out('deleted'),
      out('cleared'),
    ]);
    for (const topic of ['a', 'b', 'c']) await send('setter', { topic, payload: topic });
    const deleted = collect(helper.getNode('deleted'), 2);
    await send('deleter', { topic: 'a' });
    await send('deleter', { topic: 'a' });
    assert.deepEqual(
      (await deleted).map((msg) => msg.cache),
      [{ deleted: true }, { deleted: false }],
    );
    const cleared = collect(helper.getNode('cleared'), 1);
    await send('clearer', { payload: 'now' });
    assert.deepEqual((await cleared)[0].cache, { cleared: { memory: 2, secondLevel: null } });
    const misses = collect(helper.getNode('missOut'), 2);
    await send('getter', { topic: 'b' });
    await send('getter', { topic: 'c' });
    assert.equal((await misses).length, 2);
  });

  it('passes only changed readings with the deadband, yet keeps the latest for get', async function () {
    await helper.load(loadNodes, setGetFlow({ onlyChanged: true, deadband: '2' }));
    const passedPowers: number[] = [];
    helper.getNode('passed').on('input', (msg: any) => passedPowers.push(msg.payload.power_w));
    const reading = (power: number, ts: number) => ({
      topic: 'plug',
      payload: { device_id: 'plug', ts, power_w: power, relay_on: true },
    });
    const three = collect(helper.getNode('passed'), 3);
    for (const [index, power] of [100, 101, 99, 102.5, 103, 90].entries()) {
      await send('setter', reading(power, 1000 + index));
    }
    await three;
    await delay(100);
    assert.deepEqual(passedPowers, [100, 102.5, 90]);
    const hits = collect(helper.getNode('hitOut'), 1);
    await send('getter', { topic: 'plug' });
    assert.deepEqual((await hits)[0].payload.ts, 1005, 'the cache holds the newest reading');
  });

  it('reports a missing key, a non-JSON payload and a bad msg.ttl as catchable errors', async function () {
    await helper.load(loadNodes, setGetFlow());
    const passed: unknown[] = [];
    helper.getNode('passed').on('input', (msg: unknown) => passed.push(msg));
    const caught = collect(helper.getNode('caught'), 3);
    helper.getNode('setter').receive({ payload: 1 });
    helper.getNode('setter').receive({ topic: 'k', payload: { big: 10n } });
    helper.getNode('setter').receive({ topic: 'k', payload: 1, ttl: 'soon' });
    const errors = (await caught).map((msg) => String(msg.error.message));
    assert.match(errors[0]!, /kasa-cache\.errors\.no-key/);
    assert.match(errors[1]!, /not JSON/);
    assert.match(errors[2]!, /TTL/);
    await delay(1100);
    assert.deepEqual(passed, [], 'nothing stored, nothing passed on');
    const refused = lastStatus('setter');
    assert.equal(refused.fill, 'yellow', 'refused messages show on the canvas');
    assert.match(refused.text ?? '', /^kasa-cache\.status\.with-refused$/);
    helper.getNode('setter').receive({ topic: 'k', payload: 1 });
    await delay(1100);
    assert.equal(lastStatus('setter').fill, 'green', 'an accepted message ends the warning');
  });

  it('shows hits, misses and entries in its status', async function () {
    await helper.load(loadNodes, setGetFlow());
    assert.deepEqual(lastStatus('getter'), {
      fill: 'green',
      shape: 'dot',
      text: 'kasa-cache.status.memory',
    });
    await send('setter', { topic: 'k', payload: 1 });
    await send('getter', { topic: 'k' });
    await send('getter', { topic: 'other' });
    assert.ok(callsOf('getter', 'status').length >= 2, 'the status is redrawn as messages pass');
    const stats = caches.get('default')!.stats();
    assert.deepEqual(
      [stats.entries, stats.l1, stats.evictions, stats.l2],
      [1, { hits: 1, misses: 1 }, 0, null],
      'the counters the status shows, shared by both nodes',
    );
  });

  it('rebuilds a shared cache when nodes disagree on its settings, and says so', async function () {
    await helper.load(loadNodes, setGetFlow({}, { maxEntries: 5 }));
    const warned = ['setter', 'getter'].flatMap((id) => callsOf(id, 'warn').map((args) => args[0]));
    assert.deepEqual(warned, ['kasa-cache.log.rebuilt']);
  });
});

describe('kasa-cache node with kasa-redis (real redis-server)', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let raw: Redis;

  const redisConfig = (url: string) => ({
    id: 'redisConfig',
    type: 'kasa-redis',
    name: '',
    url,
    prefix: 'nr:',
    ttl: 300,
  });

  before(async function () {
    server = await startRedisServer();
    raw = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    raw.on('error', () => undefined);
    await raw.connect();
    await new Promise<void>((resolve) => helper.startServer(resolve));
  });
  afterEach(async function () {
    await helper.unload();
    assert.equal(caches.size, 0);
    if (raw.status === 'ready') await raw.flushall();
  });
  after(async function () {
    // Unset when the server could not start: that failure is the one to see.
    (raw as Redis | undefined)?.disconnect();
    await (server as RedisServer | undefined)?.stop();
    await new Promise<void>((resolve) => helper.stopServer(resolve));
  });

  async function untilStatus(id: string, text: string, timeoutMs = 8000) {
    const deadline = Date.now() + timeoutMs;
    while (lastStatus(id).text !== text) {
      if (Date.now() > deadline)
        throw new Error(`status of ${id} is still ${JSON.stringify(lastStatus(id))}`);
      await delay(25);
    }
  }

  it('writes through to Redis and promotes a Redis hit with its original age', async function () {
    await helper.load(
      loadNodes,
      [redisConfig(server.url), ...setGetFlow({ redis: 'redisConfig' }, { redis: 'redisConfig' })],
      { redisConfig: { username: '', password: '' } },
    );
    await untilStatus('getter', 'kasa-cache.status.two-levels');
    await send('setter', { topic: 'plug', payload: { power_w: 3 } });
    const stored = JSON.parse((await raw.get('nr:default:plug'))!);
    assert.deepEqual(stored.v, { power_w: 3 });
    const pttl = await raw.pttl('nr:default:plug');
    assert.ok(pttl > 295_000 && pttl <= 300_000, `Redis TTL ${pttl} ms`);

    // Written by another runtime 30 s ago: only Redis has it.
    const then = Date.now() - 30_000;
    await raw.set(
      'nr:default:remote',
      JSON.stringify({ t: then, e: then + 300_000, v: 'far' }),
      'PX',
      270_000,
    );
    const hits = collect(helper.getNode('hitOut'), 2);
    await send('getter', { topic: 'remote' });
    await send('getter', { topic: 'remote' });
    const [first, second] = await hits;
    assert.equal(first.payload, 'far');
    assert.equal(first.cache.level, 2);
    assert.ok(first.cache.age_ms >= 30_000 && first.cache.age_ms < 31_000);
    assert.equal(second.cache.level, 1, 'promoted to memory');
    assert.ok(second.cache.age_ms >= first.cache.age_ms, 'and not relabelled as new');
  });

  it('degrades to memory when Redis is killed, logs it once, and uses Redis again after a restart', async function () {
    await helper.load(loadNodes, [
      redisConfig(server.url),
      ...setGetFlow({ redis: 'redisConfig' }, { redis: 'redisConfig' }),
    ]);
    await untilStatus('getter', 'kasa-cache.status.two-levels');
    await server.kill();
    await untilStatus('getter', 'kasa-cache.status.redis-down');
    assert.deepEqual(lastStatus('setter'), {
      fill: 'yellow',
      shape: 'ring',
      text: 'kasa-cache.status.redis-down',
    });
    const hits = collect(helper.getNode('hitOut'), 1);
    await send('setter', { topic: 'during', payload: 'memory' });
    await send('getter', { topic: 'during' });
    assert.deepEqual([(await hits)[0].payload, (await hits)[0].cache.level], ['memory', 1]);
    await delay(1500); // reconnection attempts keep failing meanwhile
    const warnings = callsOf('redisConfig', 'warn');
    assert.equal(warnings.length, 1, 'one warning for the outage, not one per attempt');
    assert.match(String(warnings[0]![0]), /closed|ECONNREFUSED/);

    await server.restart();
    await untilStatus('getter', 'kasa-cache.status.two-levels');
    assert.ok(
      callsOf('redisConfig', 'log').some((args) => args[0] === 'kasa-redis.log.back'),
      'the recovery is logged',
    );
    await raw.connect().catch(() => undefined);
    await send('setter', { topic: 'after', payload: 'redis' });
    assert.notEqual(await raw.get('nr:default:after'), null, 'written to Redis again');
  });

  it('closes its Redis connection and timers with the flow', async function () {
    await delay(10);
    const before = handles();
    await helper.load(loadNodes, [
      redisConfig(server.url),
      ...setGetFlow({ redis: 'redisConfig' }, { redis: 'redisConfig' }),
    ]);
    await untilStatus('getter', 'kasa-cache.status.two-levels');
    await send('setter', { topic: 'k', payload: 1 });
    assert.ok(handles().TCPSocketWrap > before.TCPSocketWrap, 'connected while running');
    await helper.unload();
    await delay(1100);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(handles(), before, 'no sockets or timers of ours after close');
  });

  it('works from memory with an error when its Redis settings are invalid', async function () {
    await helper.load(loadNodes, [
      redisConfig('http://not-redis'),
      ...setGetFlow({ redis: 'redisConfig' }, { redis: 'redisConfig' }),
    ]);
    assert.match(String(callsOf('redisConfig', 'error')[0]?.[0]), /not a redis:\/\/ URL/);
    assert.deepEqual(
      callsOf('getter', 'error').map((args) => args[0]),
      ['kasa-cache.errors.no-redis'],
    );
    await send('setter', { topic: 'k', payload: 1 });
    const hits = collect(helper.getNode('hitOut'), 1);
    await send('getter', { topic: 'k' });
    assert.equal((await hits)[0].cache.level, 1);
    assert.equal(lastStatus('getter').fill, 'red');
  });
});

describe('kasa-cache and kasa-redis message catalogs', function () {
  const catalog = (type: string) =>
    JSON.parse(readFileSync(join(ROOT, 'nodes', 'locales', 'en-US', `${type}.json`), 'utf8'));
  const lookup = (tree: unknown, key: string) =>
    key
      .split('.')
      .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], tree);

  // The editor's keys (dialog, validators, labels) are checked for every node set in
  // editor-assets.spec.ts; these are the runtime's.
  it('hold every key the node code asks for', function () {
    for (const type of ['kasa-cache', 'kasa-redis']) {
      const source = readFileSync(join(ROOT, 'nodes', `${type}.ts`), 'utf8');
      const keys = [
        ...[...source.matchAll(/\bt\('([^']+)'/g)].map((match) => `${type}.${match[1]}`),
        ...[...source.matchAll(/t\(wasDown \? '([^']+)' : '([^']+)'/g)].flatMap((match) => [
          `${type}.${match[1]}`,
          `${type}.${match[2]}`,
        ]),
      ];
      assert.ok(keys.length >= 2, `${type}: ${keys.length} keys`);
      for (const key of keys) {
        assert.equal(typeof lookup(catalog(type), key), 'string', `${key} in ${type}.json`);
      }
    }
  });

  it('describe every cache error code', function () {
    const texts = {
      ...catalog('kasa-cache')['kasa-cache'].errors,
      ...catalog('kasa-redis')['kasa-redis'].errors,
    };
    for (const code of [
      'CACHE_BAD_KEY',
      'CACHE_BAD_VALUE',
      'CACHE_BAD_TTL',
      'CACHE_BAD_SETTING',
      'CACHE_BACKEND_UNAVAILABLE',
      'CACHE_BACKEND_ERROR',
    ]) {
      assert.equal(typeof texts[code], 'string', code);
    }
  });
});
