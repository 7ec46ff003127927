import assert from 'node:assert/strict';
import { join } from 'node:path';

import BetterSqlite3 from 'better-sqlite3';
import type Database from 'better-sqlite3';

import { closeDatabase, openDatabase, vacuumsIncrementally } from '../../../lib/store/database';
import { LocalDays } from '../../../lib/store/local-day';
import {
  RetentionEngine,
  type RetentionOptions,
  type RetentionProgress,
} from '../../../lib/store/retention';
import { syntheticReadings, type SyntheticReading } from '../../support/synthetic-week';
import { useTempDir } from '../../support/temp-dir';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface Row {
  ts: number;
  power_w?: number | null;
  energy_wh?: number | null;
  total_wh?: number | null;
}

interface Summary {
  device: number;
  bucket: number | string;
  samples: number;
  avg_power_w: number | null;
  min_power_w: number | null;
  max_power_w: number | null;
  energy_wh: number | null;
}

describe('RetentionEngine', function () {
  this.timeout(60_000);
  const temp = useTempDir('kasa-retention-');
  let db: Database.Database;

  beforeEach(() => {
    db = openDatabase(join(temp.dir(), 'r.db'));
  });
  afterEach(() => {
    if (db.open) closeDatabase(db);
  });

  const insert = (device: number, rows: Row[]): void => {
    db.prepare(
      `INSERT OR IGNORE INTO devices (id, device_id, first_seen, last_seen) VALUES (?, ?, 0, 0)`,
    ).run(device, `DEV${device}`);
    const statement = db.prepare(
      `INSERT INTO readings (device, ts, power_w, total_wh, energy_wh) VALUES (?, ?, ?, ?, ?)`,
    );
    db.transaction(() => {
      for (const r of rows)
        statement.run(device, r.ts, r.power_w ?? null, r.total_wh ?? null, r.energy_wh ?? null);
    })();
  };
  const run = (now: number, options: RetentionOptions = {}) =>
    new RetentionEngine(db, { clock: { now: () => now }, timeZone: 'UTC', ...options }).run();
  const hourly = (): Summary[] =>
    db
      .prepare(
        `SELECT device, hour_start AS bucket, samples, avg_power_w, min_power_w, max_power_w,
         energy_wh FROM hourly_summaries ORDER BY device, hour_start`,
      )
      .all() as Summary[];
  const daily = (): (Summary & { day_start: number })[] =>
    db
      .prepare(
        `SELECT device, day AS bucket, day_start, samples, avg_power_w, min_power_w, max_power_w,
         energy_wh FROM daily_summaries ORDER BY device, day`,
      )
      .all() as (Summary & { day_start: number })[];
  const count = (table: string): number =>
    db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
  const totalEnergy = (): number =>
    db
      .prepare(
        `SELECT (SELECT coalesce(sum(energy_wh), 0) FROM readings)
          + (SELECT coalesce(sum(energy_wh), 0) FROM hourly_summaries)
          + (SELECT coalesce(sum(energy_wh), 0) FROM daily_summaries)`,
      )
      .pluck()
      .get() as number;
  const assertClean = (rows: Summary[]): void => {
    for (const row of rows) {
      for (const key of ['avg_power_w', 'min_power_w', 'max_power_w', 'energy_wh'] as const) {
        const value = row[key];
        assert.ok(value === null || Number.isFinite(value), `${key} of ${row.bucket}: ${value}`);
      }
      assert.ok((row.energy_wh ?? 0) >= 0, `negative energy in ${row.bucket}`);
    }
  };

  describe('ground truth: a synthetic week per device (10 s, reboots, glitches, DST)', () => {
    const zone = 'Europe/Berlin';
    // Two weeks, each starting at a Berlin midnight: one across the spring change (2024-03-31,
    // 23 h) and one across the autumn change (2024-10-27, 25 h).
    const spring = Date.parse('2024-03-27T23:00:00Z');
    const autumn = Date.parse('2024-10-23T22:00:00Z');
    const weeks: Record<number, SyntheticReading[]> = {};
    before(() => {
      // Glitches sit mid-hour: the tracker books a glitch reading's energy with the next one.
      const faults = { reboots: [5000, 21_000, 47_777], glitches: [12_100, 33_350] };
      weeks[1] = syntheticReadings({ start: spring, ...faults });
      weeks[2] = syntheticReadings({ start: autumn, offsetW: 15, ...faults });
    });
    // Independent of LocalDays: the platform's own formatting of a local date.
    const format = new Intl.DateTimeFormat('sv-SE', { timeZone: zone, dateStyle: 'short' });
    const localDay = (ts: number) => format.format(ts);
    const truthBy = (device: number, bucket: (ts: number) => number | string) => {
      const sums = new Map<number | string, number>();
      for (const r of weeks[device] ?? []) {
        const key = bucket(r.ts);
        sums.set(key, (sums.get(key) ?? 0) + r.true_wh);
      }
      return sums;
    };
    const load = () => {
      for (const device of [1, 2]) {
        insert(
          device,
          (weeks[device] ?? []).map((r) => ({ ...r, power_w: r.power_w })),
        );
      }
    };
    const now = Date.parse('2024-12-01T00:00:00Z');

    it('hourly energy equals the truth within 0.1 %, DST days have 23 and 25 hours', () => {
      load();
      const report = run(now, { rawDays: 0, hourlyDays: 3650, dailyDays: 3650, timeZone: zone });
      assert.equal(report.rolled_up, 2 * 60_480);
      assert.equal(count('readings'), 0);
      const rows = hourly();
      assertClean(rows);
      for (const device of [1, 2]) {
        const truth = truthBy(device, (ts) => Math.floor(ts / HOUR) * HOUR);
        const mine = rows.filter((r) => r.device === device);
        assert.equal(mine.length, truth.size);
        for (const row of mine) {
          const expected = truth.get(row.bucket) ?? NaN;
          if (expected === 0) continue; // the first reading has no delta
          const error = Math.abs((row.energy_wh ?? NaN) - expected) / expected;
          assert.ok(error <= 0.001, `hour ${row.bucket}: ${row.energy_wh} vs ${expected}`);
        }
      }
      const hoursOf = (device: number, day: string) =>
        rows.filter((r) => r.device === device && localDay(Number(r.bucket)) === day).length;
      assert.equal(hoursOf(1, '2024-03-31'), 23);
      assert.equal(hoursOf(2, '2024-10-27'), 25);
      assert.equal(hoursOf(1, '2024-03-30'), 24);
    });

    it('daily energy equals the truth within 0.1 %, daily buckets follow local midnights', () => {
      load();
      run(now, { rawDays: 0, hourlyDays: 0, dailyDays: 3650, timeZone: zone });
      assert.equal(count('readings'), 0);
      const rows = daily();
      assertClean(rows);
      const days = new LocalDays(zone);
      for (const device of [1, 2]) {
        const truth = truthBy(device, localDay);
        const mine = rows.filter((r) => r.device === device);
        assert.equal(mine.length, truth.size);
        for (const row of mine) {
          const expected = truth.get(row.bucket) ?? NaN;
          const error = Math.abs((row.energy_wh ?? NaN) - expected) / expected;
          assert.ok(error <= 0.001, `day ${row.bucket}: ${row.energy_wh} vs ${expected}`);
          assert.equal(row.day_start, days.startOf(String(row.bucket)));
        }
      }
      const find = (device: number, day: string) =>
        rows.find((r) => r.device === device && r.bucket === day);
      // A day's samples are its readings: 360 an hour, over 23, 24 or 25 hours.
      assert.equal(find(1, '2024-03-31')?.samples, 23 * 360);
      assert.equal(find(2, '2024-10-27')?.samples, 25 * 360);
      assert.equal(find(1, '2024-03-30')?.samples, 24 * 360);
      assert.equal(find(1, '2024-03-31')?.day_start, Date.parse('2024-03-30T23:00:00Z'));
      assert.equal(find(2, '2024-10-27')?.day_start, Date.parse('2024-10-26T22:00:00Z'));
    });

    it('a second run changes nothing, and split runs give the same summaries as one', () => {
      load();
      const options = { rawDays: 0, hourlyDays: 0, dailyDays: 3650, timeZone: zone };
      run(now, options);
      const once = daily();
      const again = run(now, options);
      assert.equal(again.rolled_up, 0);
      assert.equal(again.deleted, 0);
      assert.deepEqual(daily(), once);

      // The same data, rolled up as time goes by: raw to hourly every 5 hours, then to daily.
      db.exec('DELETE FROM daily_summaries');
      load();
      for (let at = spring; at <= autumn + 8 * DAY; at += 5 * HOUR) {
        if (at > spring + 8 * DAY && at < autumn) at = autumn;
        run(at, { rawDays: 0, hourlyDays: 1, dailyDays: 3650, timeZone: zone });
      }
      run(now, options);
      const split = daily();
      assert.equal(split.length, once.length);
      split.forEach((row, i) => {
        const reference = once[i];
        assert.ok(reference !== undefined);
        assert.equal(row.bucket, reference.bucket);
        assert.equal(row.samples, reference.samples);
        assert.equal(row.min_power_w, reference.min_power_w);
        assert.equal(row.max_power_w, reference.max_power_w);
        assert.ok(Math.abs((row.energy_wh ?? 0) - (reference.energy_wh ?? 0)) < 1e-6);
        assert.ok(Math.abs((row.avg_power_w ?? 0) - (reference.avg_power_w ?? 0)) < 1e-9);
      });
    });
  });

  it('case-022: an hour is rolled up whole, and late readings merge into it', () => {
    const at = (time: string) => Date.parse(`2024-05-01T${time}Z`);
    // 600 W, total_wh +10 every 60 s, 10:00:00 to 11:59:00.
    const readings: Row[] = [];
    for (let i = 0; i < 120; i++)
      readings.push({ ts: at('10:00:00') + i * 60_000, power_w: 600, energy_wh: 10 });
    insert(
      1,
      readings.filter((r) => r.ts <= at('11:00:00')),
    );
    run(at('11:00:30'), { rawDays: 0 });
    assert.deepEqual(
      hourly().map((r) => [r.bucket, r.energy_wh]),
      [[at('10:00:00'), 600]],
      'after the first run: 10:00 = 0.600 kWh, 11:00 not yet rolled up',
    );
    assert.equal(count('readings'), 1);

    insert(
      1,
      readings.filter((r) => r.ts > at('11:00:00')),
    );
    run(at('12:00:30'), { rawDays: 0 });
    assert.deepEqual(
      hourly().map((r) => [r.bucket, r.energy_wh, r.samples]),
      [
        [at('10:00:00'), 600, 60],
        [at('11:00:00'), 600, 60],
      ],
    );

    // Late readings of an hour already rolled up (odd minutes arrive after the even ones).
    db.exec('DELETE FROM hourly_summaries');
    const late = readings.map((r, i) => ({ ...r, power_w: 100 + i }));
    insert(
      1,
      late.filter((_, i) => i % 2 === 0),
    );
    run(at('12:00:30'), { rawDays: 0 });
    insert(
      1,
      late.filter((_, i) => i % 2 === 1),
    );
    run(at('12:00:30'), { rawDays: 0 });
    const merged = hourly();
    db.exec('DELETE FROM hourly_summaries');
    insert(1, late);
    run(at('12:00:30'), { rawDays: 0 });
    assert.deepEqual(merged, hourly());
    assert.deepEqual(
      merged.map((r) => [r.samples, r.min_power_w, r.max_power_w, r.avg_power_w, r.energy_wh]),
      [
        [60, 100, 159, 129.5, 600],
        [60, 160, 219, 189.5, 600],
      ],
    );
  });

  it('case-017: daily buckets are cut at midnight of the configured zone (Sydney)', () => {
    const from = Date.parse('2023-02-21T00:00:00+11:00');
    const to = Date.parse('2023-02-23T00:00:00+11:00');
    const readings: Row[] = [];
    for (let ts = from; ts < to; ts += 5 * 60_000)
      readings.push({ ts, power_w: 100, energy_wh: 100 / 12 });
    insert(1, readings);
    run(to + 400 * DAY, {
      rawDays: 0,
      hourlyDays: 0,
      dailyDays: 3650,
      timeZone: 'Australia/Sydney',
    });
    const rows = daily();
    assert.deepEqual(
      rows.map((r) => [r.bucket, r.samples, r.avg_power_w]),
      [
        ['2023-02-21', 288, 100],
        ['2023-02-22', 288, 100],
      ],
    );
    for (const row of rows) assert.ok(Math.abs((row.energy_wh ?? 0) - 2400) < 1e-6);
    assert.equal(rows[0]?.day_start, from);
  });

  it('case-025: an empty hour gives no row and missing power no NaN', () => {
    const at = (time: string) => Date.parse(`2024-05-01T${time}Z`);
    const readings: Row[] = [];
    for (const hour of ['12', '14'])
      for (let m = 0; m < 60; m += 10)
        readings.push({ ts: at(`${hour}:${String(m).padStart(2, '0')}:00`), power_w: 10 });
    // Part b: the middle sample has no power.
    readings.push({ ts: at('15:00:00'), power_w: 10, energy_wh: 0 });
    readings.push({ ts: at('15:00:10'), power_w: null, energy_wh: 0 });
    readings.push({ ts: at('15:00:20'), power_w: 20, energy_wh: 0 });
    insert(1, readings);
    run(at('23:59:00'), { rawDays: 0, hourlyDays: 365 });
    const rows = hourly();
    assertClean(rows);
    assert.deepEqual(
      rows.map((r) => [new Date(Number(r.bucket)).toISOString().slice(11, 13), r.samples]),
      [
        ['12', 6],
        ['14', 6],
        ['15', 2],
      ],
    );
    assert.equal(rows[2]?.avg_power_w, 15);
    assert.equal(rows[0]?.energy_wh, null, 'no energy delta is no energy figure, not 0 or NaN');

    run(at('23:59:00') + 2 * DAY, { rawDays: 0, hourlyDays: 0 });
    const day = daily()[0];
    assert.ok(day !== undefined);
    assert.equal(day.samples, 14);
    assert.equal(day.avg_power_w, (12 * 10 + 30) / 14);
    assert.equal(day.energy_wh, 0);

    // A bucket whose readings all lack power: samples 0 and null figures, never 0/0.
    insert(2, [{ ts: at('12:00:00') }, { ts: at('12:00:10') }]);
    run(at('23:59:00') + 2 * DAY, { rawDays: 0, hourlyDays: 0 });
    const empty = daily().find((r) => r.device === 2);
    assert.deepEqual(
      empty && [empty.samples, empty.avg_power_w, empty.min_power_w, empty.energy_wh],
      [0, null, null, null],
    );
  });

  it('case-011: 40 Wh across a reboot in the 10:00 hour and day', () => {
    const at = (time: string) => Date.parse(`2024-05-01T${time}:00Z`);
    insert(1, [
      { ts: at('10:00'), total_wh: 1500, energy_wh: null, power_w: 120 },
      { ts: at('10:05'), total_wh: 1510, energy_wh: 10, power_w: 120 },
      { ts: at('10:10'), total_wh: 1520, energy_wh: 10, power_w: 120 },
      { ts: at('10:15'), total_wh: 4, energy_wh: 4, power_w: 96 },
      { ts: at('10:20'), total_wh: 12, energy_wh: 8, power_w: 96 },
      { ts: at('10:25'), total_wh: 20, energy_wh: 8, power_w: 96 },
    ]);
    run(at('12:00'), { rawDays: 0 });
    assert.deepEqual(
      hourly().map((r) => [r.bucket, r.energy_wh]),
      [[at('10:00'), 40]],
    );
    run(at('12:00') + 2 * DAY, { rawDays: 0, hourlyDays: 0 });
    assert.deepEqual(
      daily().map((r) => [r.bucket, r.energy_wh]),
      [['2024-05-01', 40]],
    );
  });

  it('keeps each tier for its horizon and prunes daily summaries past theirs', () => {
    const now = Date.parse('2025-06-01T12:30:00Z');
    const rows: Row[] = [];
    // One reading per hour for 400 days up to now.
    for (let ts = now - 400 * DAY; ts < now; ts += HOUR)
      rows.push({ ts, power_w: 5, energy_wh: 5 });
    insert(1, rows);
    const before = totalEnergy();
    const progress: RetentionProgress[] = [];
    const report = new RetentionEngine(db, {
      clock: { now: () => now },
      timeZone: 'UTC',
      progressIntervalMs: 0,
    }).run((p) => progress.push(p));
    assert.deepEqual(
      [...new Set(progress.map((p) => p.phase))],
      ['raw', 'hourly', 'daily', 'maintenance'],
    );
    // Whole hours only: the hour holding the horizon stays raw.
    const oldestRaw = db.prepare('SELECT min(ts) FROM readings').pluck().get() as number;
    assert.equal(oldestRaw, Math.floor((now - 7 * DAY) / HOUR) * HOUR + 30 * 60_000);
    const oldestHour = db.prepare('SELECT min(hour_start) FROM hourly_summaries').pluck().get();
    assert.ok((oldestHour as number) >= now - 31 * DAY && (oldestHour as number) < now - 29 * DAY);
    const oldestDay = db.prepare('SELECT min(day) FROM daily_summaries').pluck().get();
    assert.equal(oldestDay, new Date(now - 365 * DAY).toISOString().slice(0, 10));
    // What was pruned is exactly the days before the daily horizon: 400 - 365 days' energy
    // give or take the partial day at each end.
    const pruned = before - totalEnergy();
    assert.ok(pruned > 34 * 24 * 5 && pruned < 36 * 24 * 5, `pruned ${pruned} Wh`);
    assert.ok(report.deleted > report.rolled_up - 1000);
    assert.ok(report.db_bytes > 0);
    assert.equal(typeof report.wal_bytes, 'number');
  });

  it('rejects negative horizons and unknown zones', () => {
    assert.throws(() => new RetentionEngine(db, { rawDays: -1 }), /rawDays/);
    assert.throws(() => new RetentionEngine(db, { timeZone: 'Mars/Olympus' }), RangeError);
  });

  describe('giving deleted space back (vacuum)', () => {
    const T0 = Date.parse('2024-01-01T00:00:00Z');
    const fill = (): void => {
      // 40 days of one reading a minute: enough pages that the free list is obvious.
      const rows: Row[] = [];
      for (let ts = T0; ts < T0 + 40 * DAY; ts += 60_000)
        rows.push({ ts, power_w: 5, energy_wh: 0.08 });
      insert(1, rows);
      db.pragma('wal_checkpoint(TRUNCATE)');
    };
    const pages = (pragma: string) => db.pragma(pragma, { simple: true }) as number;

    it('creates every new file able to vacuum in slices', () => {
      assert.equal(vacuumsIncrementally(db), true);
    });

    it('with vacuum, hands the freed pages back and the file shrinks; without, keeps them for reuse', () => {
      fill();
      const now = T0 + 40 * DAY;
      const before = pages('page_count');
      run(now, { rawDays: 1, hourlyDays: 0, dailyDays: 365 });
      const kept = pages('freelist_count');
      assert.ok(kept > before / 2, `${kept} of ${before} pages are free but kept`);
      assert.equal(pages('page_count'), before, 'without vacuum the file keeps its size');

      const report = run(now, {
        rawDays: 1,
        hourlyDays: 0,
        dailyDays: 365,
        incrementalVacuum: true,
      });
      assert.equal(pages('freelist_count'), 0);
      assert.ok(pages('page_count') <= before - kept, 'the free pages left the file');
      assert.equal(report.db_bytes, pages('page_count') * pages('page_size'));
      assert.equal(report.wal_bytes, 0);
    });

    it('leaves a file created without incremental auto-vacuum as it is, without failing', () => {
      closeDatabase(db);
      const file = join(temp.dir(), 'old.db');
      const plain = new BetterSqlite3(file);
      plain.exec('CREATE TABLE left_by_an_older_version (x)');
      plain.close();
      db = openDatabase(file);
      assert.equal(vacuumsIncrementally(db), false);
      fill();
      const before = pages('page_count');
      run(T0 + 40 * DAY, { rawDays: 1, hourlyDays: 0, incrementalVacuum: true });
      assert.ok(pages('freelist_count') > 0);
      assert.equal(pages('page_count'), before);
    });
  });
});
