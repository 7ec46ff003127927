import assert from 'node:assert/strict';

import { type NodeRedProcess, startNodeRed } from '../support/node-red-process';
import { type RedisServer, startRedisServer } from '../support/redis-server';

/**
 * One runtime's flow: POST /cache/:key stores the JSON body, GET /cache/:key answers
 * `{ value, cache }` on a hit and 404 on a miss, through kasa-cache nodes on one Redis.
 */
function cacheFlow(redisUrl: string): object[] {
  const z = 'e2e-cache-tab';
  const node = (id: string, props: Record<string, unknown>, y: number) => ({
    id,
    z,
    x: 200,
    y,
    ...props,
  });
  return [
    { id: z, type: 'tab', label: 'cache e2e' },
    { id: 'e2e-redis', type: 'kasa-redis', name: '', url: redisUrl, prefix: 'e2e:', ttl: '300' },
    node(
      'e2e-post',
      { type: 'http in', url: '/cache/:key', method: 'post', wires: [['e2e-set']] },
      100,
    ),
    node(
      'e2e-set',
      {
        type: 'kasa-cache',
        cache: 'shared',
        mode: 'set',
        property: 'req.params.key',
        maxEntries: '100',
        ttl: '60',
        redis: 'e2e-redis',
        onlyChanged: false,
        deadband: '0',
        wires: [['e2e-respond']],
      },
      100,
    ),
    node(
      'e2e-get',
      { type: 'http in', url: '/cache/:key', method: 'get', wires: [['e2e-lookup']] },
      200,
    ),
    node(
      'e2e-lookup',
      {
        type: 'kasa-cache',
        cache: 'shared',
        mode: 'get',
        property: 'req.params.key',
        maxEntries: '100',
        ttl: '60',
        redis: 'e2e-redis',
        onlyChanged: false,
        deadband: '0',
        outputs: 2,
        wires: [['e2e-hit'], ['e2e-miss']],
      },
      200,
    ),
    node(
      'e2e-hit',
      {
        type: 'change',
        rules: [
          {
            t: 'set',
            p: 'payload',
            pt: 'msg',
            to: '{"value": payload, "cache": cache}',
            tot: 'jsonata',
          },
        ],
        wires: [['e2e-respond']],
      },
      200,
    ),
    node(
      'e2e-miss',
      {
        type: 'change',
        rules: [
          { t: 'set', p: 'statusCode', pt: 'msg', to: '404', tot: 'num' },
          { t: 'set', p: 'payload', pt: 'msg', to: 'miss', tot: 'str' },
        ],
        wires: [['e2e-respond']],
      },
      300,
    ),
    node('e2e-respond', { type: 'http response', statusCode: '', headers: {}, wires: [] }, 200),
  ];
}

async function put(red: NodeRedProcess, key: string, value: unknown): Promise<void> {
  const response = await fetch(`${red.url}/cache/${key}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(value),
  });
  assert.equal(response.status, 200, await response.text());
}

async function lookup(
  red: NodeRedProcess,
  key: string,
): Promise<{ value: unknown; cache: { hit: boolean; level: number; age_ms: number } } | null> {
  const response = await fetch(`${red.url}/cache/${key}`);
  if (response.status === 404) return null;
  assert.equal(response.status, 200);
  return (await response.json()) as never;
}

async function untilLogged(
  red: NodeRedProcess,
  pattern: RegExp,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(red.log())) {
    if (Date.now() > deadline) throw new Error(`no ${String(pattern)} in the log:\n${red.log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, 'g'))?.length ?? 0;

describe('end to end: kasa-cache in two Node-RED runtimes sharing one Redis', function () {
  this.timeout(90_000);
  let redis: RedisServer | undefined;
  let first: NodeRedProcess;
  let second: NodeRedProcess;
  const started: NodeRedProcess[] = [];

  before(async function () {
    redis = await startRedisServer();
    for (let i = 0; i < 2; i += 1)
      started.push(await startNodeRed({ flows: cacheFlow(redis.url) }));
    [first, second] = started as [NodeRedProcess, NodeRedProcess];
    await Promise.all([first, second].map((red) => untilLogged(red, /Connected to Redis/)));
  });
  after(async function () {
    await Promise.all(started.map((red) => red.stop()));
    await redis?.stop();
  });

  it("sees the other runtime's entries through Redis, with their age", async function () {
    await put(first, 'plug-1', { power_w: 42 });
    const remote = await lookup(second, 'plug-1');
    assert.deepEqual(remote?.value, { power_w: 42 });
    assert.equal(remote.cache.hit, true);
    assert.equal(remote.cache.level, 2, 'the second runtime found it in Redis');
    const promoted = await lookup(second, 'plug-1');
    assert.ok(promoted !== null);
    assert.equal(promoted.cache.level, 1, 'and kept a copy in memory');
    assert.ok(promoted.cache.age_ms >= remote.cache.age_ms);
    assert.equal(await lookup(second, 'nobody'), null);
  });

  it('keeps serving from memory while Redis is gone, and shares again once it is back', async function () {
    await redis!.kill();
    const down =
      /\[warn\] \[kasa-redis:e2e-redis\] Redis redis:\/\/127\.0\.0\.1:\d+ is unavailable/;
    await Promise.all([first, second].map((red) => untilLogged(red, down)));

    await put(first, 'during', { power_w: 7 });
    const local = await lookup(first, 'during');
    assert.deepEqual([local?.value, local?.cache.level], [{ power_w: 7 }, 1]);
    assert.equal(await lookup(second, 'during'), null, 'nothing shared without Redis');
    await new Promise((resolve) => setTimeout(resolve, 2000));

    await redis!.restart();
    const back = /Redis redis:\/\/127\.0\.0\.1:\d+ answers again/;
    await Promise.all([first, second].map((red) => untilLogged(red, back)));
    await put(first, 'after', { note: 'shared again' });
    const shared = await lookup(second, 'after');
    assert.deepEqual([shared?.value, shared?.cache.level], [{ note: 'shared again' }, 2]);

    for (const red of [first, second]) {
      assert.equal(count(red.log(), down), 1, 'one warning for the outage, not one per attempt');
      assert.doesNotMatch(red.log(), /\[error\]/);
    }
  });
});
