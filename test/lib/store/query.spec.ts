import assert from 'node:assert/strict';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { KasaError } from '../../../lib/errors';
import { readRealtime } from '../../../lib/readings/normalise';
import { toReading, toReadings } from '../../../lib/readings/validate';
import { closeDatabase, openDatabase } from '../../../lib/store/database';
import {
  HOUR_MS,
  QUERY_SQL,
  QueryEngine,
  type QueryEngineOptions,
  type QueryResult,
  type ReadingRow,
  type SummaryRow,
  toChartPoints,
} from '../../../lib/store/query';
import { ReadingWriter } from '../../../lib/store/writer';
import { fieldCase } from '../../support/fixtures';
import { useTempDir } from '../../support/temp-dir';
import { FakeTimers } from './fake-timers';

const DAY = 24 * HOUR_MS;
const T0 = Date.parse('2024-05-01T12:00:00Z');
const A = '80060000000000000000000000000000000A0001';
const B = '80060000000000000000000000000000000B0002';
const C = '80060000000000000000000000000000000C0003';

/** Asserts that `work` throws a BAD_QUERY whose message matches `pattern`. */
function assertBadQuery(work: () => unknown, pattern: RegExp, field?: string): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof KasaError, String(error));
    assert.equal(error.code, 'BAD_QUERY');
    assert.match(error.message, pattern);
    if (field !== undefined) assert.equal(error.details.field, field);
    return true;
  });
}

describe('QueryEngine', function () {
  const temp = useTempDir('kasa-query-');
  let db: Database.Database;
  let timers: FakeTimers;
  let writer: ReadingWriter;

  const engine = (options: QueryEngineOptions = {}) =>
    new QueryEngine(db, { clock: timers, ...options });
  const store = (items: Record<string, unknown>[]) => {
    const { readings, rejected } = toReadings(items);
    assert.equal(rejected.length, 0);
    writer.enqueue(readings);
    assert.ok(writer.flush());
  };
  /** `count` readings per device every 10 s from `from`; all devices share the same times. */
  const series = (devices: string[], count: number, from = T0) => {
    const items: Record<string, unknown>[] = [];
    devices.forEach((device_id, d) => {
      for (let i = 0; i < count; i++) {
        items.push({ device_id, ts: from + i * 10_000, power_w: d * 1000 + i, total_wh: i });
      }
    });
    store(items);
  };
  /** Every page of a query, following next_cursor to the end. */
  const allPages = (query: QueryEngine, request: Record<string, unknown>) => {
    const pages: QueryResult[] = [];
    let cursor: string | null = null;
    do {
      const page = query.run({ ...request, cursor });
      pages.push(page);
      cursor = page.next_cursor;
      assert.ok(pages.length < 1000, 'paging must end');
    } while (cursor !== null);
    return pages;
  };
  const insertSummary = (table: 'hourly' | 'daily', device: string, start: number, avg: number) => {
    const id = db.prepare('SELECT id FROM devices WHERE device_id = ?').pluck().get(device);
    if (table === 'hourly') {
      db.prepare(
        `INSERT INTO hourly_summaries (device, hour_start, samples, avg_power_w, min_power_w,
           max_power_w, energy_wh) VALUES (?, ?, 360, ?, ?, ?, ?)`,
      ).run(id, start, avg, avg - 1, avg + 1, avg);
    } else {
      db.prepare(
        `INSERT INTO daily_summaries (device, day, day_start, samples, avg_power_w, min_power_w,
           max_power_w, energy_wh) VALUES (?, ?, ?, 8640, ?, ?, ?, ?)`,
      ).run(id, new Date(start).toISOString().slice(0, 10), start, avg, avg - 1, avg + 1, avg * 24);
    }
  };

  const explain = (sql: string) =>
    db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(
      ...sql
        .split('?')
        .slice(1)
        .map(() => null),
    );

  beforeEach(function () {
    db = openDatabase(join(temp.dir(), 'query.db'));
    timers = new FakeTimers();
    writer = new ReadingWriter(db, { clock: timers, timers });
  });

  afterEach(function () {
    writer.close();
    closeDatabase(db);
  });

  describe('history', function () {
    it('should page through exactly all rows of several devices in (ts, device_id) order', function () {
      series([C, A, B], 40);
      store([{ device_id: A, ts: T0 + 5_000, power_w: 1 }]);
      const pages = allPages(engine(), { type: 'history', device_ids: [A, B, C], limit: 7 });
      const rows = pages.flatMap((page) => page.rows as ReadingRow[]);
      const expected = db
        .prepare(
          `SELECT d.device_id, r.ts FROM readings r JOIN devices d ON d.id = r.device
           ORDER BY r.ts, d.device_id`,
        )
        .all();
      assert.equal(rows.length, 121);
      assert.deepEqual(
        rows.map(({ device_id, ts }) => ({ device_id, ts })),
        expected,
      );
      assert.equal(pages.length, Math.ceil(121 / 7));
      assert.ok(pages.slice(0, -1).every((page) => page.rows.length === 7));
      assert.equal(pages.at(-1)?.next_cursor, null);
    });

    it('should page backwards through every row with order desc', function () {
      series([A, B], 25);
      const pages = allPages(engine(), { type: 'history', order: 'desc', limit: 4 });
      const rows = pages.flatMap((page) => page.rows as ReadingRow[]);
      assert.equal(rows.length, 50);
      const keys = rows.map((row) => `${row.ts}/${row.device_id}`);
      const sorted = [...rows]
        .sort((x, y) => y.ts - x.ts || (x.device_id < y.device_id ? 1 : -1))
        .map((row) => `${row.ts}/${row.device_id}`);
      assert.deepEqual(keys, sorted);
      assert.equal(new Set(keys).size, 50, 'no row twice');
    });

    it('should give the last N readings of a device newest first', function () {
      series([A, B], 30);
      const result = engine().run({ type: 'history', device_id: A, order: 'desc', limit: 3 });
      assert.deepEqual(
        (result.rows as ReadingRow[]).map((row) => [row.ts, row.power_w]),
        [
          [T0 + 290_000, 29],
          [T0 + 280_000, 28],
          [T0 + 270_000, 27],
        ],
      );
      assert.equal(result.tier, 'raw');
      assert.notEqual(result.next_cursor, null);
    });

    it('should take from inclusive and to exclusive, as ms or ISO strings', function () {
      series([A], 10);
      const result = engine().run({
        type: 'history',
        device_id: A,
        from: new Date(T0 + 20_000).toISOString(),
        to: String(T0 + 50_000),
      });
      assert.deepEqual(
        (result.rows as ReadingRow[]).map((row) => row.ts),
        [T0 + 20_000, T0 + 30_000, T0 + 40_000],
      );
    });

    it('should return only the fields asked for, besides device_id and ts', function () {
      series([A], 2);
      const query = engine();
      const rows = query.run({ type: 'history', device_id: A, fields: ['energy_wh', 'power_w'] })
        .rows as ReadingRow[];
      assert.deepEqual(rows[1], { device_id: A, ts: T0 + 10_000, energy_wh: 1, power_w: 1 });
      const text = query.run({ type: 'history', device_id: A, fields: 'voltage_v' }).rows;
      assert.deepEqual(text[0], { device_id: A, ts: T0, voltage_v: null });
      const all = query.run({ type: 'history', device_id: A }).rows[0];
      assert.deepEqual(Object.keys(all ?? {}), [
        'device_id',
        'ts',
        'power_w',
        'voltage_v',
        'current_a',
        'total_wh',
        'energy_wh',
      ]);
      assert.ok(!('device' in (all ?? {})), 'the integer key never leaves the engine');
    });

    it('should refuse an unknown field, naming it and the known ones, and keep working', function () {
      series([A], 2);
      const query = engine();
      assertBadQuery(
        () => query.run({ type: 'history', device_id: A, fields: ['power_w', 'device'] }),
        /unknown field "device" for history; known fields: power_w, voltage_v, current_a, total_wh, energy_wh/,
        'fields',
      );
      assertBadQuery(
        () => query.run({ type: 'history', fields: 'power_w; DROP TABLE readings' }),
        /unknown field "power_w; DROP TABLE readings"/,
      );
      assert.equal(query.run({ type: 'history', device_id: A }).rows.length, 2);
    });

    it('should refuse a limit over the cap rather than clamp it', function () {
      series([A], 3);
      const query = engine();
      assertBadQuery(
        () => query.run({ type: 'history', limit: 10_001 }),
        /limit 10001 is over the maximum of 10000/,
        'limit',
      );
      assertBadQuery(() => query.run({ type: 'history', limit: 0 }), /whole number/);
      assertBadQuery(() => query.run({ type: 'history', limit: 2.5 }), /whole number/);
      assert.equal(query.run({ type: 'history', limit: 10_000 }).rows.length, 3);
      assert.equal(query.run({ type: 'history', limit: '2' }).rows.length, 2);
      assertBadQuery(() => engine({ maxLimit: 50 }).run({ type: 'history', limit: 51 }), /50/);
    });

    it('should default to 1000 rows per page', function () {
      series([A], 1001);
      const result = engine().run({ type: 'history', device_id: A });
      assert.equal(result.rows.length, 1000);
      assert.notEqual(result.next_cursor, null);
    });

    it('should return nothing, not an error, for an unknown device', function () {
      series([A], 3);
      const result = engine().run({ type: 'history', device_ids: ['nobody', 'else'] });
      assert.deepEqual(result, { type: 'history', tier: 'raw', rows: [], next_cursor: null });
    });

    it('should accept a cursor only for the query that produced it', function () {
      series([A, B], 5);
      const query = engine();
      const first = query.run({ type: 'history', device_id: A, limit: 2 });
      const cursor = first.next_cursor;
      assert.equal(typeof cursor, 'string');
      assertBadQuery(
        () => query.run({ type: 'history', device_id: B, limit: 2, cursor }),
        /cursor belongs to another query/,
        'cursor',
      );
      assertBadQuery(
        () => query.run({ type: 'history', device_id: A, order: 'desc', cursor }),
        /another query/,
      );
      assertBadQuery(() => query.run({ type: 'history', cursor: 'bm9wZQ' }), /not one this node/);
      assertBadQuery(() => query.run({ type: 'history', cursor: 42 }), /string of next_cursor/);
      const second = query.run({ type: 'history', device_id: A, limit: 10, cursor });
      assert.deepEqual(
        (second.rows as ReadingRow[]).map((row) => row.ts),
        [T0 + 20_000, T0 + 30_000, T0 + 40_000],
        'a cursor survives a change of limit',
      );
    });

    it('should name what is wrong with a bad query', function () {
      const query = engine();
      assertBadQuery(() => query.run('history'), /must be an object/, 'payload');
      assertBadQuery(() => query.run({}), /type is missing/, 'type');
      assertBadQuery(() => query.run({ type: 'newest' }), /unknown query type "newest"/);
      assertBadQuery(
        () => query.run({ type: 'history', devcie_id: A }),
        /unknown query property "devcie_id"/,
        'devcie_id',
      );
      assertBadQuery(
        () => query.run({ type: 'history', from: 'yesterday' }),
        /from is not a valid/,
      );
      assertBadQuery(() => query.run({ type: 'history', to: {} }), /to must be ms/, 'to');
      assertBadQuery(() => query.run({ type: 'history', from: T0, to: T0 - 1 }), /after to/);
      assertBadQuery(() => query.run({ type: 'history', tier: 'hourly' }), /use type "summary"/);
      assertBadQuery(() => query.run({ type: 'history', order: 'up' }), /"asc" or "desc"/);
      assertBadQuery(() => query.run({ type: 'history', device_ids: [A, ''] }), /non-empty/);
      assertBadQuery(
        () => engine({ maxDevices: 2 }).run({ type: 'history', device_ids: 'a,b,c' }),
        /3 devices asked for; one query covers at most 2/,
      );
    });

    it('should refuse a query over every device when there are more than the cap', function () {
      series(['a', 'b', 'c'], 1);
      assertBadQuery(
        () => engine({ maxDevices: 2 }).run({ type: 'history' }),
        /more than 2 devices; name the ones wanted/,
        'device_ids',
      );
      assert.equal(engine({ maxDevices: 3 }).run({ type: 'history' }).rows.length, 3);
    });
  });

  describe('latest', function () {
    const many = Array.from({ length: 150 }, (_, i) => `plug-${String(i).padStart(3, '0')}`);
    /** Device i has i % 7 + 1 readings, so each device's newest reading is at its own time. */
    const fill = () => {
      const items: Record<string, unknown>[] = [];
      many.forEach((device_id, i) => {
        for (let n = 0; n <= i % 7; n++) {
          items.push({ device_id, ts: T0 + n * 60_000 + i, power_w: n });
        }
      });
      store(items);
    };

    it('should give one row per device, the newest, for every device', function () {
      fill();
      writer.upsertDevice({
        device_id: 'plug-no-meter',
        parent_id: null,
        child_id: null,
        host: null,
        port: null,
        alias: null,
        model: null,
        hw_ver: null,
        sw_ver: null,
        mac: null,
        has_emeter: false,
      });
      writer.flush();
      const result = engine().run({ type: 'latest', limit: 10_000 });
      assert.equal(result.next_cursor, null);
      const rows = result.rows as ReadingRow[];
      assert.deepEqual(
        rows.map((row) => row.device_id),
        many,
        'by device_id; the plug without readings is left out',
      );
      rows.forEach((row, i) => {
        assert.equal(row.ts, T0 + (i % 7) * 60_000 + i);
        assert.equal(row.power_w, i % 7);
      });
    });

    it('should page devices by device_id with limit and cursor', function () {
      fill();
      const query = engine();
      const pages = allPages(query, { type: 'latest', limit: 64, fields: 'power_w' });
      assert.deepEqual(
        pages.map((page) => page.rows.length),
        [64, 64, 22],
      );
      assert.deepEqual(
        pages.flatMap((page) => page.rows.map((row) => row.device_id)),
        many,
      );
      assert.deepEqual(Object.keys(pages[0]?.rows[0] ?? {}), ['device_id', 'ts', 'power_w']);
    });

    it('should look up the devices named, leaving out unknown ones', function () {
      fill();
      const named = ['plug-149', 'ghost', 'plug-003', 'plug-003', 'plug-010'];
      const rows = engine().run({ type: 'latest', device_ids: named }).rows as ReadingRow[];
      assert.deepEqual(
        rows.map((row) => [row.device_id, row.ts]),
        [
          ['plug-003', T0 + 3 * 60_000 + 3],
          ['plug-010', T0 + 3 * 60_000 + 10],
          ['plug-149', T0 + 2 * 60_000 + 149],
        ],
      );
      const pages = allPages(engine(), { type: 'latest', device_ids: named, limit: 2 });
      assert.deepEqual(
        pages.map((page) => page.rows.map((row) => row.device_id)),
        [['plug-003', 'plug-010'], ['plug-149']],
      );
    });

    it('should honour to (as of) and from (not older than)', function () {
      fill();
      const query = engine();
      const asOf = query.run({ type: 'latest', device_id: 'plug-006', to: T0 + 60_000 });
      assert.deepEqual(
        (asOf.rows as ReadingRow[]).map((row) => row.ts),
        [T0 + 6],
      );
      const fresh = query.run({ type: 'latest', from: T0 + 6 * 60_000, limit: 10_000 });
      assert.ok(fresh.rows.length > 0);
      assert.ok(
        fresh.rows.every(
          (row) => row.device_id.length > 0 && (row as ReadingRow).ts >= T0 + 6 * 60_000,
        ),
      );
      assert.equal(fresh.rows.length, many.filter((_, i) => i % 7 === 6).length);
      assertBadQuery(() => query.run({ type: 'latest', order: 'desc' }), /order does not apply/);
    });

    it('should serve the typed helpers used to warm a cache', function () {
      fill();
      const query = engine();
      assert.equal(query.latestReadings({ limit: 10_000 }).rows.length, 150);
      assert.equal(query.readings({ device_id: 'plug-006' }).rows.length, 7);
      assert.equal(query.buckets({ device_id: 'plug-006', tier: 'raw' }).rows.length, 1);
    });
  });

  describe('summary', function () {
    it('should build hour buckets from raw readings, leaving an empty hour out (case-025 a)', function () {
      const hour = (h: number) => Date.parse(`2024-05-01T${String(h).padStart(2, '0')}:00:00Z`);
      const items: Record<string, unknown>[] = [];
      for (const h of [12, 14]) {
        for (let i = 0; i < 360; i++) {
          items.push({ device_id: A, ts: hour(h) + i * 10_000, power_w: 10, energy_wh: 10 / 360 });
        }
      }
      store(items);
      const result = engine().run({
        type: 'summary',
        device_id: A,
        tier: 'raw',
        from: hour(12),
        to: hour(15),
      });
      assert.equal(result.tier, 'raw');
      const rows = result.rows as SummaryRow[];
      assert.deepEqual(
        rows.map((row) => row.bucket_start),
        [hour(12), hour(14)],
        'no 13:00 bucket',
      );
      for (const row of rows) {
        assert.equal(row.samples, 360);
        assert.equal(row.avg_power_w, 10);
        assert.equal(row.min_power_w, 10);
        assert.equal(row.max_power_w, 10);
        assert.ok(Math.abs((row.energy_wh ?? 0) - 10) < 1e-9);
      }
      assert.ok(!JSON.stringify(rows).includes('NaN'));
    });

    it('should average 15 W at 15:00 when the middle sample has no power (case-025 b)', function () {
      const { input, expected } = fieldCase('case-025-nan-in-averages');
      assert.match(expected.b, /15:00 average power = 15 W/);
      const steps = input.b_missing_field as { t: string; emeter: Record<string, unknown> }[];
      writer.enqueue(
        steps.map((step) =>
          toReading({ device_id: B, ts: `2024-05-01T${step.t}Z`, ...readRealtime(step.emeter) }),
        ),
      );
      writer.enqueue([toReading({ device_id: B, ts: '2024-05-01T16:00:00Z', voltage_v: 230 })]);
      writer.flush();
      const rows = engine().run({ type: 'summary', device_id: B, tier: 'raw' })
        .rows as SummaryRow[];
      assert.deepEqual(rows, [
        {
          device_id: B,
          bucket_start: Date.parse('2024-05-01T15:00:00Z'),
          samples: 2,
          avg_power_w: 15,
          min_power_w: 10,
          max_power_w: 20,
          energy_wh: 0,
          source: 'readings',
        },
        {
          device_id: B,
          bucket_start: Date.parse('2024-05-01T16:00:00Z'),
          samples: 0,
          avg_power_w: null,
          min_power_w: null,
          max_power_w: null,
          energy_wh: null,
          source: 'readings',
        },
      ]);
    });

    it('should return whole buckets whose start lies in [from, to)', function () {
      series([A], 3 * 360, T0);
      const rows = engine().run({
        type: 'summary',
        device_id: A,
        tier: 'raw',
        from: T0 + 30 * 60_000,
        to: T0 + 2 * HOUR_MS + 1,
        fields: ['samples'],
      }).rows;
      assert.deepEqual(rows, [
        { device_id: A, bucket_start: T0 + HOUR_MS, samples: 360 },
        { device_id: A, bucket_start: T0 + 2 * HOUR_MS, samples: 360 },
      ]);
    });

    it('should page raw buckets of several devices in both orders', function () {
      series([A, B, C], 5 * 360);
      for (const order of ['asc', 'desc'] as const) {
        const pages = allPages(engine(), { type: 'summary', tier: 'raw', order, limit: 4 });
        const keys = pages.flatMap((page) =>
          (page.rows as SummaryRow[]).map((row) => `${row.bucket_start}/${row.device_id}`),
        );
        const expected: string[] = [];
        for (let h = 0; h < 5; h++) {
          for (const device of [A, B, C]) expected.push(`${T0 + h * HOUR_MS}/${device}`);
        }
        assert.deepEqual(keys, order === 'asc' ? expected : expected.reverse());
        assert.equal(pages.length, 4);
      }
    });

    it('should read hourly and daily summaries as stored', function () {
      series([A, B], 1);
      for (let h = 0; h < 5; h++) insertSummary('hourly', A, T0 + h * HOUR_MS, 100 + h);
      insertSummary('hourly', B, T0, 7);
      for (let d = 0; d < 4; d++) insertSummary('daily', A, Date.parse('2024-04-01') + d * DAY, d);
      const query = engine();
      const hourly = query.run({
        type: 'summary',
        device_id: A,
        tier: 'hourly',
        from: T0 + HOUR_MS,
        to: T0 + 4 * HOUR_MS,
        order: 'desc',
      });
      assert.equal(hourly.tier, 'hourly');
      assert.deepEqual(hourly.rows[0], {
        device_id: A,
        bucket_start: T0 + 3 * HOUR_MS,
        samples: 360,
        avg_power_w: 103,
        min_power_w: 102,
        max_power_w: 104,
        energy_wh: 103,
        source: 'readings',
      });
      assert.deepEqual(
        (hourly.rows as SummaryRow[]).map((row) => row.avg_power_w),
        [103, 102, 101],
      );
      const both = query.run({
        type: 'summary',
        tier: 'hourly',
        to: T0 + 1,
        fields: 'avg_power_w',
      });
      assert.deepEqual(both.rows, [
        { device_id: A, bucket_start: T0, avg_power_w: 100 },
        { device_id: B, bucket_start: T0, avg_power_w: 7 },
      ]);
      const pages = allPages(query, {
        type: 'summary',
        device_id: A,
        tier: 'daily',
        limit: 3,
        fields: ['energy_wh'],
      });
      assert.equal(pages[0]?.tier, 'daily');
      assert.deepEqual(
        pages.flatMap((page) => page.rows),
        [0, 1, 2, 3].map((d) => ({
          device_id: A,
          bucket_start: Date.parse('2024-04-01') + d * DAY,
          energy_wh: d * 24,
        })),
      );
    });

    it('should let auto pick raw within 7 days, hourly within 30, daily beyond', function () {
      const now = timers.now();
      series([A], 1, now - HOUR_MS);
      insertSummary('hourly', A, now - 10 * DAY, 1);
      insertSummary('daily', A, now - 40 * DAY, 2);
      const query = engine();
      const tierFor = (request: Record<string, unknown>) =>
        query.run({ type: 'summary', device_id: A, ...request }).tier;
      assert.equal(tierFor({ from: now - DAY }), 'raw');
      assert.equal(tierFor({ from: now - 7 * DAY }), 'raw');
      assert.equal(tierFor({ from: now - 7 * DAY - 1 }), 'hourly');
      assert.equal(tierFor({ from: now - 30 * DAY }), 'hourly');
      assert.equal(tierFor({ from: now - 30 * DAY - 1 }), 'daily');
      assert.equal(tierFor({}), 'daily', 'no start: the whole history');
      assert.equal(tierFor({ from: now - 3 * DAY, raw_horizon_days: 2 }), 'hourly');
      assert.equal(tierFor({ from: now - 20 * DAY, hourly_horizon_days: '14' }), 'daily');
      assert.equal(
        engine({ rawHorizonMs: 30 * DAY }).autoTier(now - 20 * DAY, 30 * DAY, 30 * DAY),
        'raw',
      );
      const hourly = query.run({ type: 'summary', device_id: A, from: now - 11 * DAY });
      assert.deepEqual(
        (hourly.rows as SummaryRow[]).map((row) => row.avg_power_w),
        [1],
        'read from hourly_summaries',
      );
      assertBadQuery(() => tierFor({ raw_horizon_days: 0 }), /positive number of days/);
    });

    it('should keep the tier auto chose on the first page for the next ones', function () {
      const now = timers.now();
      series([A], 3 * 360, now - 7 * DAY + HOUR_MS);
      const query = engine();
      const request = { type: 'summary', device_id: A, from: now - 7 * DAY, limit: 1 };
      const first = query.run(request);
      assert.equal(first.tier, 'raw');
      timers.advance(2 * DAY);
      assert.equal(query.run(request).tier, 'hourly', 'without a cursor the range is now older');
      const second = query.run({ ...request, cursor: first.next_cursor });
      assert.equal(second.tier, 'raw');
      assert.equal((second.rows[0] as SummaryRow).bucket_start, now - 7 * DAY + 2 * HOUR_MS);
    });

    it('should shape buckets for ui-chart with ts = bucket_start', function () {
      series([A], 360);
      const result = engine().run({
        type: 'summary',
        device_id: A,
        tier: 'raw',
        fields: 'avg_power_w',
      });
      assert.deepEqual(toChartPoints(result), [{ device_id: A, ts: T0, avg_power_w: 179.5 }]);
      const history = engine().run({ type: 'history', device_id: A, limit: 1, fields: 'power_w' });
      assert.deepEqual(toChartPoints(history), [{ device_id: A, ts: T0, power_w: 0 }]);
    });
  });

  describe('plans and transactions', function () {
    it('should reach readings through the primary key in every statement, never a scan', function () {
      series([A, B, C], 200);
      for (let h = 0; h < 3; h++) insertSummary('hourly', A, T0 + h * HOUR_MS, h);
      db.exec('ANALYZE');
      let checked = 0;
      for (const [name, sql] of Object.entries(QUERY_SQL)) {
        const plan = (explain(sql) as { detail: string }[]).map((step) => step.detail);
        const text = plan.join(' | ');
        assert.doesNotMatch(
          text,
          /SCAN (readings|r|hourly_summaries|daily_summaries)\b/,
          `${name}: ${text}`,
        );
        assert.doesNotMatch(text, /TEMP B-TREE/, `${name} sorts: ${text}`);
        for (const table of ['readings', 'hourly_summaries', 'daily_summaries']) {
          // Table names inside string literals (`'readings' AS source`) are not tables read.
          if (!new RegExp(`\\b${table}\\b`).test(sql.replaceAll(/'[^']*'/g, "''"))) continue;
          checked++;
          const alias = table === 'readings' ? '(readings|r)' : table;
          assert.match(
            text,
            new RegExp(`SEARCH ${alias} USING PRIMARY KEY \\(device=\\?`),
            `${name}: ${text}`,
          );
        }
      }
      assert.equal(checked, 11, 'every statement that reads a table was checked');
      const latestAll = (
        explain(QUERY_SQL.latestAll) as {
          detail: string;
        }[]
      ).map((step) => step.detail);
      assert.match(latestAll.join(' | '), /USING PRIMARY KEY \(device=\? AND ts=\?\)/);
      assert.doesNotMatch(latestAll.join(' | '), /GROUP BY/);
    });

    it('should leave no read transaction open between queries (case-020)', function () {
      series([A, B], 500);
      const query = engine();
      query.run({ type: 'history', limit: 10 });
      query.run({ type: 'latest' });
      query.run({ type: 'summary', tier: 'raw', limit: 1 });
      assertBadQuery(() => query.run({ type: 'history', fields: 'nope' }), /unknown field/);
      assert.equal(db.inTransaction, false);
      const other = new Database(db.name);
      try {
        other.prepare('INSERT INTO readings (device, ts, power_w) VALUES (1, ?, 1)').run(T0 - 1);
        const [result] = other.pragma('wal_checkpoint(TRUNCATE)') as {
          busy: number;
          log: number;
        }[];
        assert.deepEqual(result, { busy: 0, log: 0, checkpointed: 0 });
      } finally {
        other.close();
      }
      assert.equal(query.readings({ device_id: A, limit: 1 }).rows[0]?.ts, T0 - 1);
    });
  });
});
