/**
 * Cache benchmark, each part against an anchor measured in the same run:
 * (a) the memory level in-process: TwoLevelCache get/set against bare lru-cache get/set;
 * (b) the cost per message through a real Node-RED (test/support/node-red-process.ts): a bench
 *     driver sends readings through kasa-cache (set, get, set with Redis) and, as the anchor,
 *     through a core change node;
 * (c) the second level: a Redis hit through TwoLevelCache against a bare ioredis GET of the same
 *     key, on a private redis-server (test/support/redis-server.ts).
 * Hit latency p50/p99 is reported for both levels. Run `npx tsc -p tsconfig.build.json && node
 * scripts/copy-assets.mjs` first (Node-RED loads dist/); `npx tsx bench/cache.ts` prints the table.
 */
import { join } from 'node:path';

import Redis from 'ioredis';
import { LRUCache } from 'lru-cache';

import { RedisConnection } from '../lib/cache/redis-connection';
import { TwoLevelCache } from '../lib/cache/two-level-cache';
import { startNodeRed } from '../test/support/node-red-process';
import { type RedisServer, startRedisServer } from '../test/support/redis-server';
import { median, quantile } from './support/stats';

const KEYS = 1000;
const OPS = 200_000;
const LATENCY_SAMPLES = 20_000;
const FLOW_MESSAGES = 50_000;
const L2_SAMPLES = 2000;
const REPEATS = 5;

interface Reading {
  device_id: string;
  ts: number;
  power_w: number;
  voltage_v: number;
  current_a: number;
  total_wh: number;
  relay_on: boolean;
}

const keys = Array.from({ length: KEYS }, (_, i) => `bench-${String(i).padStart(4, '0')}`);
const readings: Reading[] = keys.map((device_id, i) => ({
  device_id,
  ts: 1_714_564_800_000 + i,
  power_w: 20 + (i % 97) / 10,
  voltage_v: 230.1,
  current_a: 0.11,
  total_wh: 1000 + i,
  relay_on: true,
}));

export interface OpFigures {
  /** Median over the repeats, operations per second. */
  ops_per_s: number;
  /** Median nanoseconds per operation. */
  ns_per_op: number;
}

export interface Latency {
  p50_us: number;
  p99_us: number;
}

export interface CacheBenchResult {
  memory: {
    anchor: { set: OpFigures; get: OpFigures; hit: Latency };
    cache: { set: OpFigures; get: OpFigures; hit: Latency };
    ratio_set: number;
    ratio_get: number;
  };
  flow: {
    /** CPU of the Node-RED process per message, µs (medians). */
    anchor_us: number;
    set_us: number;
    get_us: number;
    set_redis_us: number;
    ratio_set: number;
    ratio_get: number;
    ratio_set_redis: number;
  };
  redis: {
    anchor: Latency;
    cache: Latency;
    ratio_p50: number;
  };
  durationMs: number;
}

/** Runs `body` `count` times and returns ns per call. */
async function timeOps(count: number, body: (i: number) => unknown): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i += 1) {
    const result = body(i);
    if (result instanceof Promise) await result;
  }
  return Number(process.hrtime.bigint() - started) / count;
}

/** Times single calls, µs each. */
async function latencies(count: number, body: (i: number) => unknown): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i += 1) {
    const started = process.hrtime.bigint();
    await body(i);
    samples.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  return samples;
}

const figures = (nsPerOp: number[]): OpFigures => {
  const ns = median(nsPerOp);
  return { ns_per_op: ns, ops_per_s: 1e9 / ns };
};

const latency = (samples: number[]): Latency => ({
  p50_us: quantile(samples, 0.5),
  p99_us: quantile(samples, 0.99),
});

async function memoryLevel(): Promise<CacheBenchResult['memory']> {
  const runs = {
    anchorSet: [] as number[],
    anchorGet: [] as number[],
    set: [] as number[],
    get: [] as number[],
  };
  let anchorHits: number[] = [];
  let cacheHits: number[] = [];
  for (let repeat = 0; repeat < REPEATS; repeat += 1) {
    const lru = new LRUCache<string, Reading>({ max: KEYS, ttl: 60_000 });
    runs.anchorSet.push(await timeOps(OPS, (i) => lru.set(keys[i % KEYS]!, readings[i % KEYS])));
    runs.anchorGet.push(await timeOps(OPS, (i) => lru.get(keys[i % KEYS]!)));
    const cache = new TwoLevelCache({ maxEntries: KEYS, ttlMs: 60_000 });
    runs.set.push(await timeOps(OPS, (i) => cache.set(keys[i % KEYS]!, readings[i % KEYS]!)));
    runs.get.push(
      await timeOps(OPS, async (i) => {
        if (!(await cache.get(keys[i % KEYS]!)).hit) throw new Error('expected a memory hit');
      }),
    );
    if (repeat === REPEATS - 1) {
      anchorHits = await latencies(LATENCY_SAMPLES, (i) => lru.get(keys[i % KEYS]!));
      cacheHits = await latencies(LATENCY_SAMPLES, (i) => cache.get(keys[i % KEYS]!));
    }
    cache.close();
  }
  const anchor = {
    set: figures(runs.anchorSet),
    get: figures(runs.anchorGet),
    hit: latency(anchorHits),
  };
  const cache = { set: figures(runs.set), get: figures(runs.get), hit: latency(cacheHits) };
  return {
    anchor,
    cache,
    ratio_set: cache.set.ns_per_op / anchor.set.ns_per_op,
    ratio_get: cache.get.ns_per_op / anchor.get.ns_per_op,
  };
}

function benchFlow(redisUrl: string): object[] {
  const z = 'bench-cache-tab';
  const cacheNode = (id: string, props: Record<string, unknown>, y: number) => ({
    id,
    type: 'kasa-cache',
    z,
    x: 300,
    y,
    name: '',
    cache: 'bench',
    property: 'topic',
    maxEntries: String(KEYS),
    ttl: '600',
    redis: '',
    onlyChanged: false,
    deadband: '0',
    wires: [['bench-cache-driver']],
    ...props,
  });
  return [
    { id: z, type: 'tab', label: 'cache bench' },
    {
      id: 'bench-cache-redis',
      type: 'kasa-redis',
      name: '',
      url: redisUrl,
      prefix: 'bench:',
      ttl: '600',
    },
    {
      id: 'bench-cache-driver',
      type: 'kasa-bench-cache-driver',
      z,
      x: 100,
      y: 100,
      wires: [
        ['bench-cache-set'],
        ['bench-cache-get'],
        ['bench-cache-anchor'],
        ['bench-cache-set-redis'],
      ],
    },
    cacheNode('bench-cache-set', { mode: 'set' }, 100),
    cacheNode(
      'bench-cache-get',
      { mode: 'get', outputs: 2, wires: [['bench-cache-driver'], []] },
      200,
    ),
    {
      id: 'bench-cache-anchor',
      type: 'change',
      z,
      x: 300,
      y: 300,
      rules: [{ t: 'set', p: 'cached', pt: 'msg', to: 'true', tot: 'bool' }],
      wires: [['bench-cache-driver']],
    },
    cacheNode(
      'bench-cache-set-redis',
      { mode: 'set', cache: 'bench-l2', redis: 'bench-cache-redis' },
      400,
    ),
  ];
}

interface DriverRun {
  messages: number;
  cpu_us: number;
  elapsed_ms: number;
}

async function flowCost(redis: RedisServer): Promise<CacheBenchResult['flow']> {
  const red = await startNodeRed({
    flows: benchFlow(redis.url),
    settings: { nodesDir: [join(__dirname, 'node-red')] },
  });
  try {
    const run = async (output: number, messages: number): Promise<number> => {
      const response = await fetch(`${red.url}/kasa-bench-cache/run`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ output, messages, keys: KEYS }),
      });
      if (!response.ok) throw new Error(`bench run failed: ${await response.text()}\n${red.log()}`);
      const result = (await response.json()) as DriverRun;
      return result.cpu_us / result.messages;
    };
    // Warm-up: fills both caches, so every get is a hit.
    for (const output of [0, 1, 2, 3]) await run(output, 10_000);
    const samples: Record<'set' | 'get' | 'anchor' | 'setRedis', number[]> = {
      set: [],
      get: [],
      anchor: [],
      setRedis: [],
    };
    for (let repeat = 0; repeat < REPEATS; repeat += 1) {
      samples.anchor.push(await run(2, FLOW_MESSAGES));
      samples.set.push(await run(0, FLOW_MESSAGES));
      samples.get.push(await run(1, FLOW_MESSAGES));
      samples.setRedis.push(await run(3, FLOW_MESSAGES));
    }
    if (/is unavailable|\[error\]/.test(red.log())) {
      throw new Error(
        `Redis fell out during the flow bench; figures would be wrong:\n${red.log()}`,
      );
    }
    const anchor = median(samples.anchor);
    const set = median(samples.set);
    const get = median(samples.get);
    const setRedis = median(samples.setRedis);
    return {
      anchor_us: anchor,
      set_us: set,
      get_us: get,
      set_redis_us: setRedis,
      ratio_set: set / anchor,
      ratio_get: get / anchor,
      ratio_set_redis: setRedis / anchor,
    };
  } finally {
    await red.stop();
  }
}

async function secondLevel(redis: RedisServer): Promise<CacheBenchResult['redis']> {
  const connection = new RedisConnection({ url: redis.url, prefix: 'bench:' });
  const raw = new Redis(redis.url, { maxRetriesPerRequest: 0, protocol: 2 });
  try {
    const writer = new TwoLevelCache({ name: 'l2', secondLevel: connection.namespace('l2') });
    const l2Keys = Array.from({ length: L2_SAMPLES }, (_, i) => `k${i}`);
    for (const [i, key] of l2Keys.entries()) await writer.set(key, readings[i % KEYS]);
    const anchorRuns: number[][] = [];
    const cacheRuns: number[][] = [];
    for (let repeat = 0; repeat < REPEATS; repeat += 1) {
      anchorRuns.push(await latencies(L2_SAMPLES, (i) => raw.get(`bench:l2:${l2Keys[i]!}`)));
      // A one-entry memory level: every lookup of a new key goes to Redis.
      const reader = new TwoLevelCache({
        name: 'l2',
        maxEntries: 1,
        secondLevel: connection.namespace('l2'),
      });
      cacheRuns.push(
        await latencies(L2_SAMPLES, async (i) => {
          const found = await reader.get(l2Keys[i]!);
          if (!found.hit || found.level !== 2) throw new Error('expected a Redis hit');
        }),
      );
    }
    const anchor = {
      p50_us: median(anchorRuns.map((run) => quantile(run, 0.5))),
      p99_us: median(anchorRuns.map((run) => quantile(run, 0.99))),
    };
    const cache = {
      p50_us: median(cacheRuns.map((run) => quantile(run, 0.5))),
      p99_us: median(cacheRuns.map((run) => quantile(run, 0.99))),
    };
    return { anchor, cache, ratio_p50: cache.p50_us / anchor.p50_us };
  } finally {
    raw.disconnect();
    await connection.close();
  }
}

export async function runCacheBench(): Promise<CacheBenchResult> {
  const started = performance.now();
  const memory = await memoryLevel();
  const redis = await startRedisServer();
  try {
    const flow = await flowCost(redis);
    const l2 = await secondLevel(redis);
    return { memory, flow, redis: l2, durationMs: performance.now() - started };
  } finally {
    await redis.stop();
  }
}

/** Prints the medians and the ratios to the anchors. */
export function printCacheBench(result: CacheBenchResult): void {
  const fmt = (value: number, digits = 0) =>
    value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const { memory, flow, redis } = result;
  console.log(
    `Cache, memory level in-process: ${fmt(KEYS)} keys, ${fmt(OPS)} ops per run, median of ${REPEATS} runs`,
  );
  console.log(
    `${'scenario'.padEnd(40)} ${'ops/s'.padStart(11)} ${'ns/op'.padStart(7)} ${'ratio'.padStart(6)}`,
  );
  const opRow = (name: string, op: OpFigures, ratio: number) =>
    console.log(
      `${name.padEnd(40)} ${fmt(op.ops_per_s).padStart(11)} ${fmt(op.ns_per_op).padStart(7)} ${`x${ratio.toFixed(2)}`.padStart(6)}`,
    );
  opRow('anchor: lru-cache set (object reference)', memory.anchor.set, 1);
  opRow('TwoLevelCache set (JSON copy, expiry)', memory.cache.set, memory.ratio_set);
  opRow('anchor: lru-cache get', memory.anchor.get, 1);
  opRow('TwoLevelCache get, hit (fresh copy)', memory.cache.get, memory.ratio_get);
  console.log('');
  console.log(
    `Cost per message through Node-RED 4.1 (CPU of its process), ${fmt(FLOW_MESSAGES)} readings per run over ${fmt(KEYS)} devices`,
  );
  const flowRow = (name: string, us: number, ratio: number) =>
    console.log(
      `${name.padEnd(40)} ${`${us.toFixed(1)} µs`.padStart(11)} ${`x${ratio.toFixed(2)}`.padStart(14)}`,
    );
  flowRow('anchor: change node', flow.anchor_us, 1);
  flowRow('kasa-cache set (memory)', flow.set_us, flow.ratio_set);
  flowRow('kasa-cache get, hit (memory)', flow.get_us, flow.ratio_get);
  flowRow('kasa-cache set, write-through to Redis', flow.set_redis_us, flow.ratio_set_redis);
  console.log('');
  console.log(`Hit latency (one awaited lookup), median of ${REPEATS} runs`);
  console.log(`${'level'.padEnd(40)} ${'p50 µs'.padStart(9)} ${'p99 µs'.padStart(9)}`);
  const latRow = (name: string, l: Latency) =>
    console.log(
      `${name.padEnd(40)} ${l.p50_us.toFixed(2).padStart(9)} ${l.p99_us.toFixed(2).padStart(9)}`,
    );
  latRow('L1 anchor: lru-cache get', memory.anchor.hit);
  latRow('L1 memory hit (TwoLevelCache)', memory.cache.hit);
  latRow('L2 anchor: ioredis GET (loopback)', redis.anchor);
  latRow('L2 Redis hit (TwoLevelCache, promoted)', redis.cache);
  console.log(`L2 hit p50 vs a bare GET: x${redis.ratio_p50.toFixed(2)}`);
  console.log(`total bench time: ${(result.durationMs / 1000).toFixed(1)} s`);
}

if (require.main === module) {
  runCacheBench().then(printCacheBench, (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
