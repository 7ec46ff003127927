import assert from 'node:assert/strict';

import Redis from 'ioredis';

import { RedisConnection } from '../../../lib/cache/redis-connection';
import { TwoLevelCache } from '../../../lib/cache/two-level-cache';
import type { SecondLevelState } from '../../../lib/cache/types';
import { isKasaError, type KasaError } from '../../../lib/errors';
import { freePort } from '../../support/node-red-process';
import { type RedisServer, startRedisServer } from '../../support/redis-server';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Waits, then lets the waiting timer itself be retired before handles are counted. */
const settle = async (ms: number) => {
  await delay(ms);
  await new Promise((resolve) => setImmediate(resolve));
};

/** Our own timers and sockets, by kind. */
function handles(): { Timeout: number; TCPSocketWrap: number } {
  const counts = { Timeout: 0, TCPSocketWrap: 0 };
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'Timeout' || kind === 'TCPSocketWrap') counts[kind] += 1;
  }
  return counts;
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}

/** Records every state change with its cause. */
function watch(connection: RedisConnection) {
  const states: SecondLevelState[] = [];
  const causes: (KasaError | null)[] = [];
  connection.on('state', (state, cause) => {
    states.push(state);
    causes.push(cause);
  });
  return { states, causes };
}

describe('RedisConnection (real redis-server)', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let raw: Redis;
  const open: RedisConnection[] = [];

  const connection = (options: Partial<ConstructorParameters<typeof RedisConnection>[0]> = {}) => {
    const made = new RedisConnection({ url: server.url, prefix: 'test:', ...options });
    open.push(made);
    return made;
  };

  before(async function () {
    server = await startRedisServer();
    raw = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    // Its reconnection errors while the test kills the server are expected.
    raw.on('error', () => undefined);
  });
  afterEach(async function () {
    await Promise.all(open.splice(0).map((made) => made.close()));
    server.resume();
    if (raw.status === 'ready') await raw.flushall();
  });
  after(async function () {
    // Unset when the server could not start: that failure is the one to see.
    (raw as Redis | undefined)?.disconnect();
    await (server as RedisServer | undefined)?.stop();
  });

  it('connects only when a cache uses it, and leaves no socket or timer after close', async function () {
    await settle(0); // mocha arms its test timer just after the test starts
    const before = handles();
    const unused = connection();
    assert.equal(unused.state, 'idle');
    await settle(50);
    assert.deepEqual(handles(), before, 'no connection without a user');
    await unused.close();

    const used = connection();
    const level = used.namespace('c');
    assert.equal(used.state, 'connecting');
    assert.equal(await level.usable(), true, 'the first call waits for the first connection');
    await level.set('k', { json: '1', storedAt: Date.now(), expiresAt: Date.now() + 1000 });
    await used.close();
    assert.equal(used.state, 'closed');
    assert.equal(level.usable(), false);
    await settle(50);
    assert.deepEqual(handles(), before, 'no timers or sockets left after close');
  });

  it('stores entries under <prefix><cache>:<key> with their times and a Redis TTL, shared between clients', async function () {
    const a = connection().namespace('readings');
    const b = connection().namespace('readings');
    const now = Date.now();
    assert.equal(await a.usable(), true);
    await a.set('plug-1', {
      json: '{"power_w":80}',
      storedAt: now - 5000,
      expiresAt: now + 60_000,
    });
    await raw.connect();
    const stored = JSON.parse((await raw.get('test:readings:plug-1'))!);
    assert.deepEqual(stored, { t: now - 5000, e: now + 60_000, v: { power_w: 80 } });
    const ttl = await raw.pttl('test:readings:plug-1');
    assert.ok(ttl > 55_000 && ttl <= 60_000, `PTTL ${ttl}`);
    assert.equal(await b.usable(), true);
    assert.deepEqual(await b.get('plug-1'), {
      json: '{"power_w":80}',
      storedAt: now - 5000,
      expiresAt: now + 60_000,
    });
    assert.equal(await b.get('nothing'), undefined);
    await raw.set('test:readings:foreign', 'not ours');
    assert.equal(await b.get('foreign'), undefined, 'a foreign value is a miss, not an error');
    assert.equal(await b.delete('plug-1'), true);
    assert.equal(await a.get('plug-1'), undefined);
  });

  it('clears only its own cache name, even with glob characters in it', async function () {
    const made = connection();
    const star = made.namespace('a*');
    const plain = made.namespace('ab');
    assert.equal(await star.usable(), true);
    const entry = { json: '1', storedAt: Date.now(), expiresAt: Date.now() + 60_000 };
    for (let i = 0; i < 2500; i += 1) await star.set(`k${i}`, entry);
    await plain.set('k', entry);
    assert.equal(await star.clear(), 2500);
    assert.equal(await star.get('k1'), undefined);
    assert.notEqual(await plain.get('k'), undefined, 'the other name is untouched');
  });

  it('goes down once when Redis is killed, keeps memory working, and comes back after a restart', async function () {
    const made = connection({ maxReconnectDelayMs: 200 });
    const { states, causes } = watch(made);
    const cache = new TwoLevelCache({ secondLevel: made.namespace('c') });
    await cache.set('before', 1);
    assert.equal(made.state, 'ready');

    await server.kill();
    await until(() => made.state === 'down', 5000, 'the down state');
    await delay(1000); // several failed reconnection attempts
    const started = Date.now();
    await cache.set('during', 2);
    const during = await cache.get('during');
    assert.ok(Date.now() - started < 50, 'no waiting for a Redis that is down');
    assert.ok(during.hit && during.level === 1, 'memory still serves');
    assert.deepEqual(await cache.get('missing'), { hit: false });
    assert.equal(cache.stats().l2!.skipped, 1, 'a miss in memory did not ask the dead Redis');

    await server.restart();
    await until(() => made.state === 'ready', 5000, 'the ready state after the restart');
    await cache.set('after', 3);
    await raw.connect().catch(() => undefined);
    assert.notEqual(await raw.get('test:c:after'), null, 'written to Redis again');
    assert.equal(await raw.get('test:c:during'), null, 'what was set while down stayed in memory');
    assert.deepEqual(states, ['connecting', 'ready', 'down', 'ready'], 'one change per state');
    assert.ok(isKasaError(causes[2]) && causes[2].code === 'CACHE_BACKEND_UNAVAILABLE');
    assert.match(causes[2].message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
  });

  it('gives up on a Redis that does not answer within the command timeout and probes it back', async function () {
    const made = connection({ commandTimeoutMs: 100, probeIntervalMs: 200 });
    const { states } = watch(made);
    const level = made.namespace('c');
    const cache = new TwoLevelCache({ secondLevel: level });
    await cache.set('k', 1);
    server.pause();
    const started = Date.now();
    assert.deepEqual(await cache.get('other'), { hit: false });
    const waited = Date.now() - started;
    assert.ok(waited >= 90 && waited < 1000, `gave up after ${waited} ms`);
    assert.equal(made.state, 'down');
    const next = Date.now();
    await cache.set('k2', 2);
    assert.ok(Date.now() - next < 50, 'later calls skip the slow Redis at once');
    server.resume();
    // Probes start with traffic: each call while down may send one background PING.
    await until(
      () => {
        void level.usable();
        return made.state === 'ready';
      },
      5000,
      'a probe to bring it back',
    );
    assert.deepEqual(states, ['connecting', 'ready', 'down', 'ready']);
  });

  it('waits at most one command timeout for a Redis that is not there, then reports it down', async function () {
    const nobody = await freePort();
    const made = connection({ url: `redis://127.0.0.1:${nobody}`, commandTimeoutMs: 150 });
    const { causes } = watch(made);
    const level = made.namespace('c');
    const started = Date.now();
    assert.equal(await level.usable(), false);
    assert.ok(Date.now() - started < 1000);
    await until(() => made.state === 'down', 3000, 'the down state');
    const cause = causes.find((item) => item !== null);
    assert.ok(isKasaError(cause) && cause.code === 'CACHE_BACKEND_UNAVAILABLE');
    assert.match(cause.message, /ECONNREFUSED/);
  });

  it('reports an error reply without counting Redis as down', async function () {
    const made = connection();
    const replies: KasaError[] = [];
    made.on('reply-error', (error) => replies.push(error));
    const level = made.namespace('c');
    assert.equal(await level.usable(), true);
    await raw.connect().catch(() => undefined);
    await raw.lpush('test:c:list', 'x');
    await assert.rejects(level.get('list'), /WRONGTYPE/);
    assert.equal(made.state, 'ready');
    assert.equal(replies.length, 1);
    assert.equal(replies[0]!.code, 'CACHE_BACKEND_ERROR');
  });

  it('refuses a URL that is not redis:// and never shows credentials', async function () {
    assert.throws(
      () => new RedisConnection({ url: 'http://127.0.0.1:6379' }),
      (error) => isKasaError(error) && error.code === 'CACHE_BAD_SETTING',
    );
    const made = connection({ url: 'redis://user:secret@127.0.0.1:1/2' });
    assert.equal(made.displayUrl, 'redis://127.0.0.1:1/2');
    await made.close();
  });

  it('authenticates with the credentials given apart from the URL', async function () {
    const locked = await startRedisServer({ args: ['--requirepass', 'sesame'] });
    try {
      const without = connection({ url: locked.url, commandTimeoutMs: 500 });
      const { causes } = watch(without);
      assert.equal(await without.namespace('c').usable(), false);
      await until(() => without.state === 'down', 3000, 'refused without a password');
      assert.match(String(causes.find((item) => item !== null)?.message), /NOAUTH|auth/i);
      const withPassword = connection({ url: locked.url, password: 'sesame' });
      assert.equal(await withPassword.namespace('c').usable(), true);
      await Promise.all(open.splice(0).map((made) => made.close()));
    } finally {
      await locked.stop();
    }
  });
});
