import assert from 'node:assert/strict';
import { join } from 'node:path';

import request from 'supertest';

import { FakeFleet } from '../support/fake-kasa-device';
import { collect, delay, helper, nodes, unloadAll } from '../support/node-helper';
import { useTempDir } from '../support/temp-dir';

// The nodes use the built modules: the registry under test is dist's, not lib's under tsx.
const { metricsRegistry } = require('../../dist/nodes/shared/metrics.js') as {
  metricsRegistry: (red: unknown) => {
    openWindows: number;
    targets: number;
    prometheus(): Promise<string>;
  } | null;
};
type NodeModule = (red: unknown) => void;
const perfModule = require('../../dist/nodes/kasa-perf-metrics.js') as NodeModule;

/** The RED object the perf-metrics node was given, so the test can reach its httpNode. */
let red: { httpNode: { _router?: { stack: { route?: { path?: string } }[] } } } | null = null;
const perfMetrics: NodeModule = (api) => {
  red = api as typeof red;
  perfModule(api);
};
const loadNodes = [
  nodes.devicePool,
  nodes.poll,
  require('../../dist/nodes/kasa-sqlite-db.js') as NodeModule,
  require('../../dist/nodes/kasa-sqlite-store.js') as NodeModule,
  perfMetrics,
  require('../../dist/nodes/kasa-cache.js') as NodeModule,
  require('../../dist/nodes/kasa-adaptive-interval.js') as NodeModule,
  nodes.catchNode,
] as Parameters<typeof helper.load>[0];

const BASE_SETTINGS = { poolLingerMs: 0, dbRetryMs: 200 };
/** Replaces settings.kasaMonitor for the next load (node-helper's init sets BASE_SETTINGS). */
const kasaSettings = (kasaMonitor: object) =>
  helper.settings({ kasaMonitor } as unknown as Parameters<typeof helper.settings>[0]);
const MB = 1024 * 1024;

interface Status {
  fill?: string;
  text?: string;
}
interface TestNode {
  receive(msg: object): void;
  status: { getCalls(): { thisValue: unknown; args: [Status] }[] };
}
const node = (id: string) => helper.getNode(id) as unknown as TestNode;

/** The node's own last status (the status spy is shared by every node of the flow). */
function lastStatus(id: string): Status {
  const own = node(id)
    .status.getCalls()
    .filter((call) => call.thisValue === helper.getNode(id));
  const last = own.at(-1);
  assert.ok(last !== undefined, `${id} showed a status`);
  return last.args[0];
}

function flow(perf: Record<string, unknown> = {}, extra: object[] = []) {
  return [
    { id: 'tab', type: 'tab', label: 'test' },
    {
      id: 'perf',
      type: 'kasa-perf-metrics',
      z: 'tab',
      name: '',
      interval: 0,
      memoryLimit: 500,
      endpoint: false,
      path: '/kasa-metrics',
      wires: [['out'], ['memory']],
      ...perf,
    },
    { id: 'out', type: 'helper', z: 'tab', wires: [] },
    { id: 'memory', type: 'helper', z: 'tab', wires: [] },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab', wires: [] },
    ...extra,
  ];
}

async function snapshot(): Promise<any> {
  const received = collect(helper.getNode('out'), 1);
  node('perf').receive({ payload: 'now' });
  return ((await received)[0] as { payload: unknown }).payload;
}

function routes(path: string): number {
  return (red?.httpNode._router?.stack ?? []).filter((layer) => layer.route?.path === path).length;
}

describe('kasa-perf-metrics node', function () {
  this.timeout(20_000);
  const fleet = new FakeFleet();
  const temp = useTempDir('kasa-perf-');

  before(function (done) {
    helper.startServer(done);
  });
  afterEach(async function () {
    await unloadAll();
    await fleet.stopAll();
    kasaSettings(BASE_SETTINGS);
    const registry = metricsRegistry({ settings: {} });
    assert.ok(registry !== null);
    assert.equal(registry.openWindows, 0, 'every window closed with its node');
    assert.equal(registry.targets, 0, 'every node took its metrics source with it');
  });
  after(function (done) {
    helper.stopServer(done);
  });

  it('counts what a poll -> store flow did: N polls, M rows', async function () {
    const plugs = [
      await fleet.start('KP115(EU)_1.0_1.0.16'),
      await fleet.start('HS110(EU)_4.0_1.0.4'),
    ];
    const path = join(temp.dir(), 'metrics.db');
    await helper.load(
      loadNodes,
      flow({}, [
        {
          id: 'pool',
          type: 'kasa-device-pool',
          maxInFlight: 8,
          timeout: 1,
          retries: 0,
          maxPowerW: 4000,
        },
        { id: 'db', type: 'kasa-sqlite-db', path },
        {
          id: 'poll',
          type: 'kasa-poll',
          z: 'tab',
          pool: 'pool',
          devices: plugs.map((plug) => `127.0.0.1:${plug.port}`).join('\n'),
          interval: 0,
          output: 'reading',
          wires: [['writer']],
        },
        {
          // Not 'store': an id equal to the mode's value reads as a config-node reference.
          id: 'writer',
          type: 'kasa-sqlite-store',
          z: 'tab',
          db: 'db',
          mode: 'store',
          batchSize: 1,
          flushInterval: 0.05,
          wires: [['stored']],
        },
        { id: 'stored', type: 'helper', z: 'tab', wires: [] },
      ]),
    );
    const before = await snapshot();
    const rounds = 3;
    for (let round = 0; round < rounds; round += 1) {
      const stored = collect(helper.getNode('stored'), plugs.length);
      node('poll').receive({ payload: 'go' });
      await stored;
    }
    await delay(200); // the last flush
    const after = await snapshot();
    assert.equal(after.counters.polls - before.counters.polls, rounds * plugs.length);
    assert.equal(after.counters.rows_written - before.counters.rows_written, rounds * plugs.length);
    assert.equal(after.operations.poll.count, rounds * plugs.length);
    assert.ok(after.operations.poll.min_ms > 0);
    assert.ok(after.operations.poll.max_ms >= after.operations.poll.p95_ms);
    assert.ok(after.operations.flush.count >= 1);
    assert.equal(after.devices.online, 2);
    assert.equal(after.devices.offline, 0);
    assert.ok(after.store.database_mb > 0);
    assert.ok(after.memory.rss_mb > 0 && after.memory.heap_used_mb > 0);
    assert.ok(after.event_loop.max_ms >= 0);
    const shown = lastStatus('perf');
    assert.equal(shown.fill, 'green');
    assert.match(shown.text ?? '', /^kasa-perf-metrics\.status\.figures/);
  });

  it('records the cache per level and the adaptive-interval bands', async function () {
    const cacheNode = (id: string, mode: string, wires: string[][]) => ({
      id,
      type: 'kasa-cache',
      z: 'tab',
      name: '',
      cache: 'perf-test',
      mode,
      property: 'topic',
      maxEntries: 10,
      ttl: 60,
      redis: '',
      onlyChanged: false,
      deadband: 0,
      wires,
    });
    await helper.load(
      loadNodes,
      flow({}, [
        cacheNode('setter', 'set', [['set-done']]),
        cacheNode('getter', 'get', [['hit'], ['miss']]),
        { id: 'set-done', type: 'helper', z: 'tab', wires: [] },
        { id: 'hit', type: 'helper', z: 'tab', wires: [] },
        { id: 'miss', type: 'helper', z: 'tab', wires: [] },
        {
          id: 'adaptive',
          type: 'kasa-adaptive-interval',
          z: 'tab',
          base: '30',
          min: '5',
          max: '300',
          lowCv: '0.05',
          highCv: '0.25',
          window: '5',
          deadband: '2',
          hold: '2',
          wires: [[]],
        },
      ]),
    );
    const stored = collect(helper.getNode('set-done'), 1);
    helper.getNode('setter').receive({ topic: 'plug-a', payload: { power_w: 5 } });
    await stored;
    const hits = collect(helper.getNode('hit'), 3);
    const misses = collect(helper.getNode('miss'), 1);
    for (let index = 0; index < 3; index += 1)
      helper.getNode('getter').receive({ topic: 'plug-a', payload: null });
    helper.getNode('getter').receive({ topic: 'plug-b', payload: null });
    await Promise.all([hits, misses]);
    helper.getNode('adaptive').receive({ payload: { device_id: 'plug-a', power_w: 5 } });
    helper.getNode('adaptive').receive({ payload: { device_id: 'plug-b', power_w: 7 } });
    const payload = await snapshot();
    assert.deepEqual(payload.cache.l1, { hits: 3, misses: 1, hit_rate: 0.75 });
    assert.equal(payload.cache.hit_rate, 0.75);
    assert.equal(payload.cache.entries, 1);
    assert.deepEqual(payload.intervals, { fast: 0, base: 0, slow: 0, learning: 2 });
  });

  it('sends a snapshot every interval and resets the window on msg.reset', async function () {
    await helper.load(loadNodes, flow({ interval: 0.1 }));
    const two = await collect(helper.getNode('out'), 2, 3000);
    assert.equal(two[0].topic, 'kasa-perf-metrics');
    assert.deepEqual(Object.keys(two[0].payload as object).sort(), [
      'cache',
      'counters',
      'devices',
      'event_loop',
      'handles',
      'intervals',
      'memory',
      'operations',
      'pool',
      'store',
      'window_s',
    ]);
    await helper.unload();
    await helper.load(loadNodes, flow());
    const reset = collect(helper.getNode('out'), 1);
    await delay(100);
    node('perf').receive({ payload: 'now', reset: true });
    const closing = (await reset)[0].payload;
    assert.ok(closing.window_s >= 0.1, 'the reset message reports the window it closes');
    const fresh = await snapshot();
    assert.ok(fresh.window_s < closing.window_s);
  });

  it('answers a bad msg.reset with a catchable error and keeps working', async function () {
    await helper.load(loadNodes, flow());
    const caught = collect(helper.getNode('caught'), 1);
    node('perf').receive({ payload: 'now', reset: 'yes' });
    const [error] = await caught;
    assert.match(error.error.message, /kasa-perf-metrics\.errors\.bad-reset/);
    assert.equal(lastStatus('perf').fill, 'yellow', 'the refused message shows on the canvas');
    assert.equal(lastStatus('perf').text, 'kasa-perf-metrics.status.with-refused');
    const payload = await snapshot();
    assert.equal(typeof payload.counters.polls, 'number');
    assert.equal(lastStatus('perf').fill, 'green', 'an accepted message ends the warning');
  });

  it('names an unusable interval or memory limit once and runs on the defaults', async function () {
    await helper.load(loadNodes, flow({ interval: 'often', memoryLimit: '-5' }));
    const perf = helper.getNode('perf') as unknown as {
      error: { getCalls(): { args: unknown[] }[] };
    };
    const errors = perf.error.getCalls().map((call) => String(call.args[0]));
    assert.equal(errors.length, 2, errors.join(' | '));
    assert.match(errors[0]!, /settings\.not-a-number/);
    assert.match(errors[1]!, /settings\.not-a-number/);
    const payload = await snapshot();
    assert.equal(typeof payload.counters.polls, 'number', 'still answers input');
  });

  it('warns once per crossing of the memory limit', async function () {
    const rss = [100, 600, 700, 650, 400, 800, 900].map((mb) => mb * MB);
    let call = 0;
    kasaSettings({ ...BASE_SETTINGS, memoryUsage: () => ({ rss: rss[call++] ?? 900 * MB }) });
    await helper.load(loadNodes, flow({ memoryLimit: 500 }));
    const warnings: any[] = [];
    helper.getNode('memory').on('input', (msg: unknown) => warnings.push(msg));
    for (let index = 0; index < rss.length; index += 1) await snapshot();
    assert.equal(warnings.length, 2, 'crossing at 600 and again at 800');
    assert.deepEqual(
      warnings.map((msg) => [msg.topic, msg.payload.rss_mb, msg.payload.limit_mb]),
      [
        ['memory', 600, 500],
        ['memory', 800, 500],
      ],
    );
    assert.equal(lastStatus('perf').fill, 'yellow');
  });

  it('serves Prometheus text at its path and takes the route away on close', async function () {
    await helper.load(loadNodes, flow({ endpoint: true, path: '/kasa-metrics-test' }));
    assert.equal(routes('/kasa-metrics-test'), 1);
    const app = red!.httpNode as unknown as Parameters<typeof request>[0];
    const response = await request(app).get('/kasa-metrics-test');
    assert.equal(response.status, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(response.text, /^# HELP kasa_poll_duration_seconds /m);
    assert.match(response.text, /^kasa_polls_total \d+$/m);
    assert.match(response.text, /^kasa_process_resident_memory_bytes \d+/m);
    await helper.unload();
    assert.equal(routes('/kasa-metrics-test'), 0, 'no stale route');
    assert.equal((await request(app).get('/kasa-metrics-test')).status, 404);
  });

  it('refuses an unusable path without serving anything', async function () {
    await helper.load(loadNodes, flow({ endpoint: true, path: 'no slash' }));
    const [caught] = await collect(helper.getNode('caught'), 1);
    assert.match(caught.error.message, /kasa-perf-metrics\.errors\.bad-path/);
    assert.equal(lastStatus('perf').fill, 'red');
    assert.equal(routes('no slash'), 0);
    await snapshot();
    assert.deepEqual(
      [lastStatus('perf').fill, lastStatus('perf').text],
      ['red', 'kasa-perf-metrics.status.bad-path'],
      'a snapshot does not paint over the problem',
    );
  });

  it('says so when metrics are switched off, and records nothing', async function () {
    kasaSettings({ ...BASE_SETTINGS, metrics: false });
    await helper.load(
      loadNodes,
      flow({ interval: 0.05 }, [
        {
          id: 'quiet-cache',
          type: 'kasa-cache',
          z: 'tab',
          cache: 'quiet',
          mode: 'set',
          wires: [[]],
        },
      ]),
    );
    assert.equal(metricsRegistry({ settings: {} })?.targets, 0, 'the cache is not measured');
    assert.equal(lastStatus('perf').text, 'kasa-perf-metrics.status.off');
    const caught = collect(helper.getNode('caught'), 1);
    node('perf').receive({ payload: 'now' });
    const [error] = await caught;
    assert.match(error.error.message, /kasa-perf-metrics\.errors\.off/);
    assert.equal(metricsRegistry({ settings: {} })?.openWindows, 0);
  });

  it('leaves no timer, window or route after close', async function () {
    await helper.load(loadNodes, flow({ interval: 0.05, endpoint: true, path: '/kasa-closing' }));
    await collect(helper.getNode('out'), 1, 3000);
    assert.equal(metricsRegistry({ settings: {} })?.openWindows, 1);
    const out = helper.getNode('out');
    await helper.unload();
    let late = 0;
    out.on('input', () => (late += 1));
    await delay(200);
    assert.equal(late, 0, 'no snapshot after close');
    assert.equal(routes('/kasa-closing'), 0);
    assert.equal(metricsRegistry({ settings: {} })?.openWindows, 0);
  });
});
