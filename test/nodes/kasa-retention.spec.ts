import assert from 'node:assert/strict';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { closeDatabase, openDatabase } from '../../lib/store/database';
import { useTempDir } from '../support/temp-dir';
import { collect, delay, helper, nodes } from '../support/node-helper';

// The nodes use the built modules, a different instance from lib/ under tsx.
const { databases } = require('../../dist/lib/store/registry.js') as {
  databases: { size: number; paths(): string[] };
};
const { activeRetentionWorkers } = require('../../dist/lib/store/retention-runner.js') as {
  activeRetentionWorkers: () => number;
};
type NodeModule = (red: unknown) => void;
const loadNodes = [
  require('../../dist/nodes/kasa-sqlite-db.js') as NodeModule,
  require('../../dist/nodes/kasa-retention.js') as NodeModule,
  nodes.catchNode,
] as Parameters<typeof helper.load>[0];

interface Status {
  fill?: string;
  shape?: string;
  text?: string;
}
interface TestNode {
  receive(msg: object): void;
  status: { args: [Status][] };
  error: { args: [unknown][] };
  warn: { args: [unknown][] };
}
const node = (id: string) => helper.getNode(id) as unknown as TestNode;

const DAY = 86_400_000;
/** Readings start 10 days ago: old enough to roll up, too young for the daily tier. */
const START = Math.floor((Date.now() - 10 * DAY) / DAY) * DAY;

function flow(path: string, retention: Record<string, unknown> = {}) {
  return [
    { id: 'tab', type: 'tab', label: 'test' },
    { id: 'db', type: 'kasa-sqlite-db', name: '', path },
    {
      id: 'retention',
      type: 'kasa-retention',
      z: 'tab',
      name: '',
      db: 'db',
      rawDays: 7,
      hourlyDays: 30,
      dailyDays: 365,
      timezone: 'UTC',
      every: 0,
      wires: [['out']],
      ...retention,
    },
    { id: 'out', type: 'helper', z: 'tab', wires: [] },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab', wires: [] },
  ];
}

describe('kasa-retention node', function () {
  this.timeout(30_000);
  const temp = useTempDir('kasa-retention-node-');
  const file = () => join(temp.dir(), 'readings.db');

  /** `devices` plugs at 10 s for `days` days from START. */
  const fill = (devices: number, days: number): number => {
    const db = openDatabase(file());
    const insert = db.prepare(
      'INSERT INTO readings (device, ts, power_w, energy_wh) VALUES (?, ?, 50, 0.5)',
    );
    const perDevice = (days * 86_400_000) / 10_000;
    db.transaction(() => {
      for (let d = 1; d <= devices; d++)
        for (let i = 0; i < perDevice; i++) insert.run(d, START + i * 10_000);
    })();
    closeDatabase(db);
    return devices * perDevice;
  };

  before(function (done) {
    helper.startServer(done);
  });
  afterEach(async function () {
    await helper.unload();
    assert.equal(databases.size, 0, `databases left open: ${databases.paths().join(', ')}`);
    assert.equal(activeRetentionWorkers(), 0, 'a retention worker outlived its node');
  });
  after(function (done) {
    helper.stopServer(done);
  });

  it('reports a missing database configuration', async function () {
    await helper.load(loadNodes, flow(file(), { db: 'nowhere' }));
    const retention = node('retention');
    assert.deepEqual(retention.status.args.at(-1)?.[0], {
      fill: 'red',
      shape: 'ring',
      text: 'kasa-retention.status.no-config',
    });
    assert.equal(retention.error.args[0]?.[0], 'kasa-retention.errors.missing-config');
  });

  it('runs on input, answers a message that came during the run with the same run', async function () {
    const rows = fill(2, 1);
    await helper.load(loadNodes, flow(file()));
    const out = collect(helper.getNode('out'), 2, 20_000);
    node('retention').receive({ topic: 'first' });
    node('retention').receive({ topic: 'second' });
    const [first, second] = await out;
    assert.equal(first.topic, 'first');
    assert.equal(second.topic, 'second');
    const report = first.payload as Record<string, number>;
    assert.deepEqual(Object.keys(report).sort(), [
      'db_bytes',
      'deleted',
      'duration_ms',
      'rolled_up',
      'wal_bytes',
    ]);
    assert.equal(report.rolled_up, rows);
    assert.equal(report.deleted, rows);
    assert.ok((report.db_bytes ?? 0) > 0);
    // One run answered both: a second run would have found nothing to roll up.
    assert.deepEqual(second.payload, report);
    const db = new Database(file(), { readonly: true });
    try {
      const energy = db.prepare('SELECT sum(energy_wh) FROM hourly_summaries').pluck().get();
      assert.ok(Math.abs((energy as number) - rows * 0.5) < 1e-6);
      assert.equal(db.prepare('SELECT count(*) FROM readings').pluck().get(), 0);
    } finally {
      db.close();
    }
    assert.equal(node('retention').status.args.at(-1)?.[0].text, 'kasa-retention.status.done');
  });

  it('with Shrink file, hands the space of deleted rows back to the disk', async function () {
    fill(2, 1);
    const pages = (pragma: string): number => {
      const db = new Database(file(), { readonly: true });
      try {
        return db.pragma(pragma, { simple: true }) as number;
      } finally {
        db.close();
      }
    };
    const before = pages('page_count');
    await helper.load(loadNodes, flow(file(), { vacuum: true }));
    const out = collect(helper.getNode('out'), 1, 20_000);
    node('retention').receive({});
    const [{ payload }] = await out;
    assert.equal(pages('freelist_count'), 0);
    assert.ok(pages('page_count') < before / 2, `${pages('page_count')} of ${before} pages`);
    assert.equal((payload as { db_bytes: number }).db_bytes, pages('page_count') * 4096);
    assert.deepEqual(node('retention').warn.args, [], 'a file of this version can shrink');
  });

  it('says how to convert a file of an older version that cannot shrink, and still runs', async function () {
    const plain = new Database(file());
    plain.exec('CREATE TABLE from_an_older_version (x)');
    plain.close();
    const rows = fill(1, 1);
    await helper.load(loadNodes, flow(file(), { vacuum: true }));
    assert.equal(node('retention').warn.args.length, 1);
    assert.match(
      String(node('retention').warn.args[0]?.[0]),
      /kasa-retention\.warnings\.no-vacuum/,
    );
    const out = collect(helper.getNode('out'), 1, 20_000);
    node('retention').receive({});
    const [{ payload }] = await out;
    assert.equal((payload as { deleted: number }).deleted, rows);
  });

  it('rejects an unknown time zone at deploy, and tells the first message why it does not run', async function () {
    await helper.load(loadNodes, flow(file(), { timezone: 'Mars/Olympus' }));
    const retention = node('retention');
    assert.equal(retention.status.args.at(-1)?.[0].text, 'kasa-retention.status.bad-timezone');
    const caught: string[] = [];
    const catcher = helper.getNode('caught') as unknown as {
      on(event: 'input', listener: (msg: { error: { message: string } }) => void): void;
    };
    catcher.on('input', (msg) => caught.push(msg.error.message));
    const retentionNode = helper.getNode('retention');
    retentionNode.receive({});
    retentionNode.receive({});
    await delay(50);
    // The setup report (when it comes after the listener was added) and the first message's
    // answer, which reads the same; the second message is only counted.
    assert.ok(caught.length >= 1 && caught.length <= 2, caught.join(' | '));
    for (const text of caught) assert.equal(text, 'kasa-retention.errors.bad-timezone');
    assert.deepEqual(retention.status.args.at(-1)?.[0], {
      fill: 'red',
      shape: 'ring',
      text: 'kasa-retention.status.with-refused',
    });
  });

  it('close stops a run in progress and leaves no worker', async function () {
    fill(30, 2);
    await helper.load(loadNodes, flow(file()));
    node('retention').receive({});
    const started = Date.now();
    while (activeRetentionWorkers() === 0 && Date.now() - started < 5000) await delay(5);
    assert.equal(activeRetentionWorkers(), 1);
    await delay(20);
    assert.equal(activeRetentionWorkers(), 1, 'the run is still going when the flow stops');
    // afterEach unloads the flow and checks that the worker is gone.
  });

  it('says in its status whether it waits for its schedule or for input', async function () {
    await helper.load(loadNodes, flow(file(), { every: 60 }));
    assert.equal(node('retention').status.args.at(-1)?.[0].text, 'kasa-retention.status.scheduled');
    await helper.unload();
    await helper.load(loadNodes, flow(file(), { every: 0 }));
    assert.equal(node('retention').status.args.at(-1)?.[0].text, 'kasa-retention.status.on-input');
  });

  it('runs on its schedule and sends the report with topic retention', async function () {
    const rows = fill(1, 1);
    // 0.002 minutes: a run every 120 ms.
    await helper.load(loadNodes, flow(file(), { every: 0.002 }));
    // A tick that falls into a run still going (a busy machine) shares that run's report, so the
    // first reports may repeat it; a later run must find nothing left to roll up.
    const reports: { topic: string; payload: { rolled_up: number } }[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no empty run in: ${JSON.stringify(reports)}`)),
        10_000,
      );
      helper.getNode('out').on('input', (msg: any) => {
        reports.push(msg);
        if (msg.payload.rolled_up === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    assert.equal(reports[0]!.topic, 'retention');
    assert.equal(reports[0]!.payload.rolled_up, rows);
    assert.ok(reports.every((report) => [rows, 0].includes(report.payload.rolled_up)));
  });
});
