import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { useTempDir } from '../support/temp-dir';
import { collect, delay, helper, nodes } from '../support/node-helper';

// The nodes use the built registry, a different module instance from lib/ under tsx.
const { databases } = require('../../dist/lib/store/registry.js') as {
  databases: { size: number; paths(): string[] };
};
type Translate = (key: string, params?: Record<string, unknown>) => string;
type NodeModule = (red: { _: Translate }) => void;
const dbModule = require('../../dist/nodes/kasa-sqlite-db.js') as NodeModule;
const storeModule = require('../../dist/nodes/kasa-sqlite-store.js') as NodeModule;

/** The helper's RED._ returns bare keys; keep the substitutions visible so tests can check them. */
function withVisibleParams(module: NodeModule): NodeModule {
  return (red) => {
    red._ = (key, params) => (params === undefined ? key : `${key} ${JSON.stringify(params)}`);
    module(red);
  };
}

interface Status {
  fill?: string;
  shape?: string;
  text?: string;
}
/** A node under test as the helper leaves it: its methods are sinon spies. */
interface TestNode {
  receive(msg: object): void;
  on(event: 'input', listener: (msg: unknown) => void): void;
  status: {
    args: [Status][];
    callCount: number;
    getCalls(): { thisValue: unknown; args: [Status] }[];
  };
  error: { args: [unknown][]; callCount: number; calledWith(...args: unknown[]): boolean };
}
const node = (id: string) => helper.getNode(id) as unknown as TestNode;
const loadNodes = [
  withVisibleParams(dbModule),
  withVisibleParams(storeModule),
  nodes.catchNode,
] as Parameters<typeof helper.load>[0];

const DEVICE = '80060000000000000000000000000000000A0001';
const T0 = Date.parse('2024-05-01T12:00:00Z');
const reading = (i: number, extra: Record<string, unknown> = {}) => ({
  device_id: DEVICE,
  ts: T0 + i * 10_000,
  power_w: 10 + i,
  total_wh: 100 + i,
  ...extra,
});

function flow(path: string, store: Record<string, unknown> = {}) {
  return [
    { id: 'tab', type: 'tab', label: 'test' },
    { id: 'db', type: 'kasa-sqlite-db', name: '', path },
    {
      id: 'store',
      type: 'kasa-sqlite-store',
      z: 'tab',
      x: 300,
      y: 100,
      name: '',
      db: 'db',
      mode: 'store',
      batchSize: 1000,
      flushInterval: 1,
      wires: [['out']],
      ...store,
    },
    { id: 'out', type: 'helper', z: 'tab', x: 500, y: 100, wires: [] },
    {
      id: 'catcher',
      type: 'catch',
      z: 'tab',
      x: 100,
      y: 200,
      scope: null,
      uncaught: false,
      wires: [['caught']],
    },
    { id: 'caught', type: 'helper', z: 'tab', x: 300, y: 200, wires: [] },
  ];
}

function query<T>(file: string, sql: string): T[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

const statusCalls = (of: TestNode): Status[] => of.status.args.map((args) => args[0]);
/** The helper spies on the Node prototype: with two of our nodes in a flow, keep one's calls. */
const ownStatusCalls = (of: TestNode): Status[] =>
  of.status
    .getCalls()
    .filter((call) => call.thisValue === of)
    .map((call) => call.args[0]);

describe('kasa-sqlite-store node', function () {
  this.timeout(15_000);
  const temp = useTempDir('kasa-store-node-');
  const file = () => join(temp.dir(), 'readings.db');

  before(function (done) {
    helper.startServer(done);
  });
  afterEach(async function () {
    await helper.unload();
    assert.equal(databases.size, 0, `databases left open: ${databases.paths().join(', ')}`);
  });
  after(function (done) {
    helper.stopServer(done);
  });

  it('should load, open the database and show it is ready', async function () {
    await helper.load(loadNodes, flow(file()));
    const store = node('store');
    assert.ok(existsSync(file()));
    assert.deepEqual(statusCalls(store).at(-1), {
      fill: 'grey',
      shape: 'dot',
      text: 'kasa-sqlite-store.status.ready',
    });
    assert.deepEqual(databases.paths(), [file()]);
  });

  it('should write readings, pass the message on with msg.stored and keep them after unload', async function () {
    await helper.load(loadNodes, flow(file(), { flushInterval: 60 }));
    const out = collect(helper.getNode('out'), 2);
    node('store').receive({ topic: DEVICE, payload: reading(0) });
    node('store').receive({ payload: [reading(1), reading(2, { power_w: 'NaN' })] });
    const [first, second] = await out;
    assert.deepEqual(first.stored, { accepted: 1, rejected: 0 });
    assert.equal(first.topic, DEVICE);
    assert.deepEqual(second.stored, { accepted: 2, rejected: 0 });
    assert.equal(second.payload[1].power_w, 'NaN', 'the message itself is passed on unchanged');
    await helper.unload();
    const rows = query<{ ts: number; power_w: number | null; energy_wh: number | null }>(
      file(),
      'SELECT ts, power_w, energy_wh FROM readings ORDER BY ts',
    );
    assert.deepEqual(rows, [
      { ts: T0, power_w: 10, energy_wh: null },
      { ts: T0 + 10_000, power_w: 11, energy_wh: 1 },
      { ts: T0 + 20_000, power_w: null, energy_wh: 1 },
    ]);
  });

  it('should reject a string payload with a catchable error and send nothing', async function () {
    await helper.load(loadNodes, flow(file()));
    const caught = collect(helper.getNode('caught'), 1);
    let sent = 0;
    node('out').on('input', () => sent++);
    node('store').receive({ payload: 'hello' });
    const [msg] = await caught;
    assert.equal(msg.error.source.id, 'store');
    assert.match(msg.error.message, /kasa-sqlite-store\.errors\.rejected /);
    assert.match(msg.error.message, /"count":1,"total":1/);
    assert.match(msg.error.message, /payload: a reading must be an object, got \\"hello\\"/);
    await delay(50);
    assert.equal(sent, 0);
  });

  it('should write the good items of an array and name the bad one in one error', async function () {
    await helper.load(loadNodes, flow(file()));
    const caught = collect(helper.getNode('caught'), 1);
    const out = collect(helper.getNode('out'), 1);
    node('store').receive({
      payload: [reading(0), { ts: T0 + 5000, power_w: 3 }, reading(1)],
    });
    const [[error], [passed]] = await Promise.all([caught, out]);
    assert.match(error.error.message, /"count":1,"total":3/);
    assert.match(error.error.message, /payload\[1\]: device_id is missing/);
    assert.deepEqual(passed.stored, { accepted: 2, rejected: 1 });
    await delay(1100);
    const rejectedStatus = statusCalls(node('store')).at(-1);
    assert.equal(rejectedStatus?.fill, 'yellow', 'a rejected item shows in the status');
    assert.match(
      rejectedStatus.text ?? '',
      /status\.with-refused .*status\.written .*"rows\\":2.*"refused":1\}$/,
    );
    node('store').receive({ payload: reading(2) });
    await delay(1100);
    const laterStatus = statusCalls(node('store')).at(-1);
    assert.equal(laterStatus?.fill, 'green', 'a wholly valid message turns it green again');
    assert.match(
      laterStatus.text ?? '',
      /status\.with-refused .*status\.written .*"rows\\":3.*"refused":1\}$/,
    );
    await helper.unload();
    assert.equal(query(file(), 'SELECT * FROM readings').length, 3);
  });

  it('should record msg.devices, meter or not', async function () {
    await helper.load(loadNodes, flow(file()));
    const out = collect(helper.getNode('out'), 1);
    node('store').receive({
      payload: Date.now(),
      devices: [{ device_id: 'lamp', model: 'HS103(US)', has_emeter: false }],
    });
    const [msg] = await out;
    assert.deepEqual(msg.stored, { accepted: 0, rejected: 0 });
    await helper.unload();
    assert.deepEqual(query(file(), 'SELECT device_id, model, has_emeter FROM devices'), [
      { device_id: 'lamp', model: 'HS103(US)', has_emeter: 0 },
    ]);
  });

  it('should update the status at most once a second, however many messages arrive', async function () {
    await helper.load(loadNodes, flow(file()));
    const store = node('store');
    const before = store.status.callCount;
    for (let i = 0; i < 200; i++) store.receive({ payload: reading(i) });
    await delay(1300);
    const calls = statusCalls(store).slice(before);
    assert.ok(calls.length >= 1 && calls.length <= 3, `${calls.length} status updates`);
    assert.deepEqual(calls.at(-1), {
      fill: 'green',
      shape: 'dot',
      text: 'kasa-sqlite-store.status.written {"rows":200,"queued":0}',
    });
  });

  it('should turn yellow while another program locks the file, keep the rows and recover', async function () {
    await helper.load(loadNodes, flow(file(), { flushInterval: 0.05 }));
    const store = node('store');
    const locker = new Database(file());
    try {
      locker.exec('BEGIN IMMEDIATE');
      store.receive({ payload: [reading(0), reading(1)] });
      await delay(700);
      const errors = store.error.args.map((args) => String(args[0]));
      assert.equal(errors.length, 1, 'one error for the whole outage');
      assert.match(errors[0]!, /errors\.DB_WRITE_FAILED .*"sqliteCode":"SQLITE_BUSY"/);
      assert.match(statusCalls(store).at(-1)?.text ?? '', /status\.retrying/);
      assert.equal(statusCalls(store).at(-1)?.fill, 'yellow');
      locker.exec('COMMIT');
    } finally {
      locker.close();
    }
    await delay(2500);
    assert.equal(statusCalls(store).at(-1)?.fill, 'green');
    assert.equal(query(file(), 'SELECT * FROM readings').length, 2);
  });

  it('should turn yellow when the queue is more than 80% full', async function () {
    await helper.load(loadNodes, flow(file(), { batchSize: 100_000, flushInterval: 3600 }));
    const store = node('store');
    const out = collect(helper.getNode('out'), 1);
    store.receive({ payload: Array.from({ length: 85_000 }, (_, i) => reading(i)) });
    await out;
    assert.deepEqual(statusCalls(store).at(-1), {
      fill: 'yellow',
      shape: 'ring',
      text: 'kasa-sqlite-store.status.queue-high {"queued":85000,"max":100000}',
    });
    await helper.unload();
    assert.equal(query(file(), 'SELECT ts FROM readings').length, 85_000);
  });

  it('should show a red ring and an error when the config node is missing, without crashing', async function () {
    await helper.load(
      loadNodes,
      flow(file(), { db: 'nowhere' }).filter((n) => n.id !== 'db'),
    );
    const store = node('store');
    assert.deepEqual(statusCalls(store).at(-1), {
      fill: 'red',
      shape: 'ring',
      text: 'kasa-sqlite-store.status.no-config',
    });
    assert.ok(store.error.calledWith('kasa-sqlite-store.errors.missing-config'));
    const caught = collect(helper.getNode('caught'), 1);
    store.receive({ payload: reading(0) });
    const [first] = await caught;
    assert.match(first.error.message, /kasa-sqlite-store\.errors\.missing-config$/);
    store.receive({ payload: reading(1) });
    await delay(20);
    assert.deepEqual(statusCalls(store).at(-1), {
      fill: 'red',
      shape: 'ring',
      text: 'kasa-sqlite-store.status.with-refused {"status":"kasa-sqlite-store.status.no-config","refused":2}',
    });
  });

  it('should report a database in a missing directory in the log and the status', async function () {
    const missing = join(temp.dir(), 'no-such-dir', 'x.db');
    await helper.load(loadNodes, flow(missing));
    const db = node('db');
    const store = node('store');
    const logged = String(db.error.args[0]?.[0]);
    assert.match(logged, /kasa-sqlite-db:kasa-sqlite-db\.errors\.DB_OPEN_FAILED/);
    assert.ok(logged.includes(JSON.stringify(missing).slice(1, -1)), logged);
    assert.match(logged, /directory does not exist/);
    assert.deepEqual(statusCalls(store).at(-1), {
      fill: 'red',
      shape: 'ring',
      text: 'kasa-sqlite-store.status.open-failed',
    });
    const caught: any[] = [];
    helper.getNode('caught').on('input', (msg: any) => caught.push(msg));
    for (let index = 0; index < 3; index += 1) store.receive({ payload: reading(index) });
    await delay(50);
    assert.equal(caught.length, 1, 'reported once, not per message');
    assert.match(caught[0].error.message, /DB_OPEN_FAILED/);
    assert.deepEqual(statusCalls(store).at(-1), {
      fill: 'red',
      shape: 'ring',
      text: 'kasa-sqlite-store.status.open-failed-refused {"refused":3}',
    });
    assert.equal(databases.size, 0);

    // Creating the folder is enough: the next message after the retry delay opens the file.
    mkdirSync(join(temp.dir(), 'no-such-dir'));
    await delay(250);
    const passed = collect(helper.getNode('out'), 1);
    store.receive({ payload: reading(5) });
    await passed;
    assert.equal(caught.length, 1);
    await helper.unload();
    assert.equal(query(missing, 'SELECT * FROM readings').length, 1);
  });

  it('should close cleanly: file deletable and reopenable, nothing left open', async function () {
    await helper.load(loadNodes, flow(file(), { flushInterval: 60 }));
    node('store').receive({ payload: [reading(0), reading(1)] });
    await delay(10);
    const started = Date.now();
    await helper.unload();
    assert.ok(Date.now() - started < 2000);
    assert.equal(databases.size, 0);
    assert.equal(query(file(), 'SELECT * FROM readings').length, 2);
    rmSync(file());
    rmSync(`${file()}-wal`, { force: true });
    rmSync(`${file()}-shm`, { force: true });
    await helper.load(loadNodes, flow(file()));
    assert.equal(query(file(), 'SELECT * FROM readings').length, 0);
  });

  describe('query mode', function () {
    /** The store flow plus a query node on the same database config, wired to `answers`. */
    function queryFlow(path: string, queryNode: Record<string, unknown> = {}) {
      return [
        ...flow(path, { flushInterval: 0.05 }),
        {
          id: 'query',
          type: 'kasa-sqlite-store',
          z: 'tab',
          x: 300,
          y: 300,
          name: '',
          db: 'db',
          mode: 'query',
          chart: false,
          rawHorizon: 7,
          wires: [['answers']],
          ...queryNode,
        },
        { id: 'answers', type: 'helper', z: 'tab', x: 500, y: 300, wires: [] },
      ];
    }
    /** Stores readings through the store node and waits until they are in the file. */
    async function storeAndFlush(count: number) {
      const out = collect(helper.getNode('out'), 1);
      node('store').receive({ payload: Array.from({ length: count }, (_, i) => reading(i)) });
      await out;
      for (let waited = 0; waited < 2000; waited += 20) {
        if (query(file(), 'SELECT ts FROM readings').length === count) return;
        await delay(20);
      }
      throw new Error('the store node did not flush');
    }
    const ask = async (payload: unknown) => {
      const answer = collect(helper.getNode('answers'), 1);
      node('query').receive({ payload });
      return (await answer)[0];
    };

    it('should answer from the rows a store node on the same database flushed', async function () {
      await helper.load(loadNodes, queryFlow(file()));
      assert.deepEqual(databases.paths(), [file()], 'one connection for both nodes');
      const empty = await ask({ type: 'latest' });
      assert.deepEqual(empty.payload, []);
      assert.deepEqual(empty.query, { type: 'latest', tier: 'raw', count: 0, next_cursor: null });
      await storeAndFlush(5);
      const page = await ask({
        type: 'history',
        device_id: DEVICE,
        order: 'desc',
        limit: 2,
        fields: ['power_w', 'energy_wh'],
      });
      assert.deepEqual(page.payload, [
        { device_id: DEVICE, ts: T0 + 40_000, power_w: 14, energy_wh: 1 },
        { device_id: DEVICE, ts: T0 + 30_000, power_w: 13, energy_wh: 1 },
      ]);
      assert.equal(page.query.count, 2);
      assert.equal(typeof page.query.next_cursor, 'string');
      assert.equal(page.action, undefined, 'no chart shaping unless asked for');
      const rest = await ask({
        type: 'history',
        device_id: DEVICE,
        order: 'desc',
        limit: 10,
        cursor: page.query.next_cursor,
      });
      assert.deepEqual(
        rest.payload.map((row: { ts: number }) => row.ts),
        [T0 + 20_000, T0 + 10_000, T0],
      );
      assert.equal(rest.query.next_cursor, null);
      await delay(50);
      assert.match(
        ownStatusCalls(node('query')).at(-1)?.text ?? '',
        /kasa-sqlite-store\.status\.answered \{"queries":\d,"rows":\d,"ms":[\d.]+\}/,
      );
    });

    it('should shape rows for ui-chart and set msg.action to replace', async function () {
      await helper.load(loadNodes, queryFlow(file(), { chart: true }));
      await storeAndFlush(3);
      const history = await ask({ type: 'history', fields: 'power_w' });
      assert.equal(history.action, 'replace');
      assert.deepEqual(history.payload, [
        { device_id: DEVICE, ts: T0, power_w: 10 },
        { device_id: DEVICE, ts: T0 + 10_000, power_w: 11 },
        { device_id: DEVICE, ts: T0 + 20_000, power_w: 12 },
      ]);
      const summary = await ask({ type: 'summary', tier: 'raw', fields: ['avg_power_w'] });
      assert.equal(summary.action, 'replace');
      assert.deepEqual(summary.payload, [{ device_id: DEVICE, ts: T0, avg_power_w: 11 }]);
      assert.deepEqual(summary.query, {
        type: 'summary',
        tier: 'raw',
        count: 1,
        next_cursor: null,
      });
    });

    it('should report a bad query as a catchable error and keep answering', async function () {
      await helper.load(loadNodes, queryFlow(file()));
      await storeAndFlush(2);
      let answered = 0;
      node('answers').on('input', () => answered++);
      const caught = collect(helper.getNode('caught'), 3);
      node('query').receive({ payload: { type: 'history', fields: ['power_w', 'nope'] } });
      node('query').receive({ payload: { type: 'history', limit: 50_000 } });
      node('query').receive({ payload: 'SELECT * FROM readings' });
      const errors = (await caught).map(
        (msg) => msg.error as { message: string; source: { id: string } },
      );
      assert.ok(errors.every((error) => error.source.id === 'query'));
      assert.match(errors[0]!.message, /kasa-sqlite-store:kasa-sqlite-store\.errors\.BAD_QUERY /);
      assert.match(errors[0]!.message, /unknown field \\"nope\\" for history/);
      assert.match(errors[1]!.message, /limit 50000 is over the maximum of 10000/);
      assert.match(errors[2]!.message, /a query must be an object/);
      assert.equal(answered, 0);
      await delay(1100);
      const refusedStatus = ownStatusCalls(node('query')).at(-1);
      assert.equal(refusedStatus?.fill, 'yellow');
      assert.match(
        refusedStatus.text ?? '',
        /^kasa-sqlite-store\.status\.with-refused .*"refused":3\}$/,
      );
      assert.match(refusedStatus.text ?? '', /"status":"kasa-sqlite-store\.status\.ready"/);
      const after = await ask({ type: 'history' });
      assert.equal(after.payload.length, 2, 'the node still answers');
      await delay(1100);
      assert.equal(ownStatusCalls(node('query')).at(-1)?.fill, 'green');
    });

    it('should count the queries it could not answer while the database cannot be opened', async function () {
      await helper.load(loadNodes, queryFlow(join(temp.dir(), 'no-such-dir', 'q.db')));
      for (let index = 0; index < 2; index += 1)
        node('query').receive({ payload: { type: 'latest' } });
      await delay(50);
      assert.deepEqual(ownStatusCalls(node('query')).at(-1), {
        fill: 'red',
        shape: 'ring',
        text: 'kasa-sqlite-store.status.open-failed-unanswered {"refused":2}',
      });
    });

    it('should refuse a mode it does not know', async function () {
      await helper.load(loadNodes, queryFlow(file(), { mode: 'export' }));
      assert.deepEqual(ownStatusCalls(node('query')).at(-1), {
        fill: 'red',
        shape: 'ring',
        text: 'kasa-sqlite-store.status.unsupported-mode',
      });
      assert.ok(
        node('query').error.calledWith(
          'kasa-sqlite-store.errors.unsupported-mode {"mode":"export"}',
        ),
      );
    });
  });
});
