import assert from 'node:assert/strict';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { KasaError } from '../../../lib/errors';
import { readRealtime } from '../../../lib/readings/normalise';
import { toReading, toReadings } from '../../../lib/readings/validate';
import { closeDatabase, openDatabase } from '../../../lib/store/database';
import { ReadingWriter, type ReadingWriterOptions } from '../../../lib/store/writer';
import type { Reading } from '../../../lib/types';
import { fieldCase } from '../../support/fixtures';
import { useTempDir } from '../../support/temp-dir';
import { FakeTimers } from './fake-timers';

const DEVICE = '80060000000000000000000000000000000A0001';
const T0 = Date.parse('2024-05-01T12:00:00Z');

function reading(ts: number, fields: Partial<Reading> = {}): Reading {
  return toReading({ device_id: DEVICE, ts, power_w: 50, ...fields });
}

function readings(count: number, from = T0): Reading[] {
  return Array.from({ length: count }, (_, i) => reading(from + i * 10_000));
}

describe('ReadingWriter', function () {
  const temp = useTempDir();
  let db: Database.Database;
  let timers: FakeTimers;
  let writer: ReadingWriter;

  const open = (options: ReadingWriterOptions = {}) => {
    writer = new ReadingWriter(db, { clock: timers, timers, ...options });
    return writer;
  };
  const count = (table = 'readings') =>
    db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;

  beforeEach(function () {
    db = openDatabase(join(temp.dir(), 'writer.db'));
    timers = new FakeTimers();
  });

  afterEach(function () {
    writer.close();
    closeDatabase(db);
  });

  describe('batching', function () {
    it('should write a full batch on the next turn, not row by row', function () {
      open({ batchSize: 3, flushIntervalMs: 60_000 });
      writer.enqueue(readings(2));
      assert.equal(count(), 0);
      assert.deepEqual(timers.delays(), [60_000]);
      writer.enqueue(readings(1, T0 + 100_000));
      assert.equal(count(), 0, 'a full batch waits for messages already in flight');
      assert.deepEqual(timers.delays(), [0]);
      timers.advance(0);
      assert.equal(count(), 3);
      assert.equal(writer.stats.flushes, 1);
      assert.equal(timers.size, 0, 'an empty queue needs no timer');
    });

    it('should flush on the spot when ten batches pile up', function () {
      open({ batchSize: 2, flushIntervalMs: 60_000 });
      writer.enqueue(readings(19));
      assert.equal(count(), 0);
      writer.enqueue(readings(1, T0 + 1_000_000));
      assert.equal(count(), 20);
      assert.equal(writer.stats.lastFlushRows, 20);
    });

    it('should write by time when the batch does not fill, counting from the oldest row', function () {
      open({ batchSize: 1000, flushIntervalMs: 1000 });
      writer.enqueue(readings(2));
      timers.advance(600);
      writer.enqueue(readings(2, T0 + 100_000));
      timers.advance(399);
      assert.equal(count(), 0);
      timers.advance(1);
      assert.equal(count(), 4);
      assert.equal(writer.stats.flushes, 1);
    });

    it('should write what is queued on close and leave no timer', function () {
      open({ batchSize: 1000, flushIntervalMs: 60_000 });
      writer.enqueue(readings(5));
      assert.equal(writer.close(), 0);
      assert.equal(count(), 5);
      assert.equal(timers.size, 0);
      assert.throws(
        () => writer.enqueue(readings(1)),
        (error: unknown) => error instanceof KasaError && error.code === 'WRITER_CLOSED',
      );
    });

    it('should take the most eager flush settings when reconfigured', function () {
      open({ batchSize: 1000, flushIntervalMs: 60_000 });
      writer.configure({ batchSize: 2 });
      writer.enqueue(readings(2));
      timers.advance(0);
      assert.equal(count(), 2);
    });
  });

  describe('back-pressure', function () {
    it('should refuse a whole call when the queue would overflow and keep what it accepted', function () {
      open({ batchSize: 1000, flushIntervalMs: 60_000, maxQueuedRows: 10 });
      writer.enqueue(readings(8));
      assert.throws(
        () => writer.enqueue(readings(3, T0 + 1_000_000)),
        (error: unknown) =>
          error instanceof KasaError &&
          error.code === 'WRITER_QUEUE_FULL' &&
          error.details.refused === 3 &&
          /full/.test(error.message),
      );
      assert.equal(writer.stats.queueDepth, 8, 'nothing of the refused call is queued');
      writer.enqueue(readings(2, T0 + 2_000_000));
      writer.close();
      assert.equal(count(), 10);
    });
  });

  describe('duplicates (case-023)', function () {
    it('should store 2 rows, 1 Wh for 12:01 and count the duplicate without aborting', function () {
      const { input, expected } = fieldCase('case-023-duplicate-reading-insert');
      const batch = (input.batch as { device: string }[]).map(({ device, ...rest }) => ({
        device_id: device,
        ...rest,
      }));
      open();
      writer.enqueue(toReadings(batch).readings);
      assert.ok(writer.flush());
      assert.equal(count(), expected.rows);
      const rows = db.prepare('SELECT ts, energy_wh FROM readings ORDER BY ts').all() as {
        ts: number;
        energy_wh: number | null;
      }[];
      assert.deepEqual(
        rows.map((row) => row.ts),
        [T0, T0 + 60_000],
      );
      assert.equal(rows[1]?.energy_wh, expected.energy_12_00_to_12_01_wh);
      assert.equal(writer.stats.duplicates, 1);
      assert.equal(writer.stats.rowsWritten, 2);
    });

    it('should ignore a replay of stored readings in a later flush', function () {
      open();
      writer.enqueue(readings(3));
      writer.flush();
      writer.enqueue([...readings(3), reading(T0 + 1_000_000)]);
      writer.flush();
      assert.equal(count(), 4);
      assert.equal(writer.stats.duplicates, 3);
    });
  });

  describe('energy', function () {
    it('should continue from the last stored counter after a restart', function () {
      open();
      writer.enqueue([reading(T0, { total_wh: 1000 })]);
      writer.close();
      open();
      writer.enqueue([reading(T0 + 60_000, { total_wh: 1003.5 })]);
      writer.flush();
      const energy = db.prepare('SELECT energy_wh FROM readings WHERE ts = ?').pluck();
      assert.equal(energy.get(T0), null);
      assert.equal(energy.get(T0 + 60_000), 3.5);
    });

    it('should keep an energy_wh the reading brings', function () {
      open();
      writer.enqueue([
        reading(T0, { total_wh: 1000 }),
        reading(T0 + 1, { total_wh: 1001, energy_wh: 0.25 }),
      ]);
      writer.flush();
      assert.equal(
        db
          .prepare('SELECT energy_wh FROM readings WHERE ts = ?')
          .pluck()
          .get(T0 + 1),
        0.25,
      );
    });
  });

  describe('missing values (case-025 b)', function () {
    it('should store a missing power as NULL so the 15:00 average is 15 W', function () {
      const { input } = fieldCase('case-025-nan-in-averages');
      const steps = input.b_missing_field as { t: string; emeter: Record<string, unknown> }[];
      open();
      writer.enqueue(
        steps.map((step) =>
          toReading({
            device_id: DEVICE,
            ts: `2024-05-01T${step.t}Z`,
            ...readRealtime(step.emeter),
          }),
        ),
      );
      writer.enqueue([
        toReading({
          device_id: DEVICE,
          ts: T0 + 3_600_000 * 5,
          power_w: Number.NaN,
          voltage_v: 'NaN',
        }),
      ]);
      writer.flush();
      const types = db
        .prepare('SELECT typeof(power_w) AS p, typeof(voltage_v) AS v FROM readings ORDER BY ts')
        .all();
      assert.deepEqual(types, [
        { p: 'real', v: 'real' },
        { p: 'null', v: 'real' },
        { p: 'real', v: 'real' },
        { p: 'null', v: 'null' },
      ]);
      const average = db
        .prepare('SELECT avg(power_w) FROM readings WHERE ts < ?')
        .pluck()
        .get(Date.parse('2024-05-01T16:00:00Z'));
      assert.equal(average, 15);
    });
  });

  describe('devices', function () {
    it('should insert a device on first sight and update it once per flush, not per row', function () {
      open();
      const changes = db.prepare('SELECT total_changes()').pluck();
      const before = changes.get() as number;
      writer.enqueue(readings(50).map((r, i) => ({ ...r, alias: `Fridge ${i}` })));
      writer.flush();
      // 50 readings + 1 devices insert + 1 devices update.
      assert.equal((changes.get() as number) - before, 52);
      const device = db.prepare('SELECT * FROM devices').get() as Record<string, unknown>;
      assert.equal(device.device_id, DEVICE);
      assert.equal(device.alias, 'Fridge 49');
      assert.equal(device.first_seen, T0);
      assert.equal(device.last_seen, T0 + 49 * 10_000);
      assert.equal(device.has_emeter, 1);
      const key = db.prepare('SELECT DISTINCT device FROM readings').pluck().all();
      assert.deepEqual(key, [device.id]);
    });

    it('should record devices without a meter and keep their key for later readings', function () {
      open();
      writer.upsertDevices([
        {
          device_id: 'plug-no-meter',
          parent_id: null,
          child_id: null,
          host: '127.0.0.2',
          port: 9999,
          alias: 'Lamp',
          model: 'HS103(US)',
          hw_ver: '1.0',
          sw_ver: '1.5.7',
          mac: null,
          has_emeter: false,
        },
      ]);
      timers.advance(1000);
      assert.equal(count('readings'), 0);
      const lamp = db.prepare("SELECT * FROM devices WHERE device_id = 'plug-no-meter'").get() as
        Record<string, unknown> | undefined;
      assert.equal(lamp?.has_emeter, 0);
      assert.equal(lamp.model, 'HS103(US)');
      writer.upsertDevice({
        device_id: 'plug-no-meter',
        parent_id: null,
        child_id: null,
        host: null,
        port: null,
        alias: 'Desk lamp',
        model: null,
        hw_ver: null,
        sw_ver: null,
        mac: null,
        has_emeter: false,
      });
      writer.enqueue([toReading({ device_id: 'plug-no-meter', ts: T0 })]);
      writer.flush();
      const again = db
        .prepare("SELECT * FROM devices WHERE device_id = 'plug-no-meter'")
        .get() as Record<string, unknown>;
      assert.equal(again.id, lamp.id);
      assert.equal(again.alias, 'Desk lamp');
      assert.equal(again.model, 'HS103(US)', 'a null field keeps the stored value');
      assert.equal(count('devices'), 1);
    });
  });

  describe('failing writes', function () {
    it('should keep every row while another connection holds the write lock, then write them all', function () {
      open({ flushIntervalMs: 1000, lockWaitMs: 0 });
      const errors: KasaError[] = [];
      let recovered = 0;
      writer.on('error', (error) => errors.push(error));
      writer.on('recovered', () => recovered++);
      const other = new Database(db.name);
      try {
        other.exec('BEGIN IMMEDIATE');
        writer.enqueue(readings(5));
        timers.advance(1000);
        assert.equal(writer.stats.failing, true);
        assert.equal(writer.stats.queueDepth, 5);
        assert.deepEqual(timers.delays(), [1000]);
        writer.enqueue(readings(3, T0 + 1_000_000));
        timers.advance(1000);
        assert.deepEqual(timers.delays(), [2000], 'retries back off');
        timers.advance(2000);
        assert.deepEqual(timers.delays(), [4000]);
        assert.equal(writer.stats.failures, 3);
        assert.equal(errors.length, 1, 'one error per change of state');
        assert.equal(errors[0]?.code, 'DB_WRITE_FAILED');
        assert.equal(errors[0].details.sqliteCode, 'SQLITE_BUSY');
        assert.equal(errors[0].details.transient, true);
        assert.equal(recovered, 0);
        other.exec('COMMIT');
        timers.advance(4000);
        assert.equal(count(), 8);
        assert.equal(recovered, 1);
        assert.equal(writer.stats.failing, false);
        assert.equal(writer.stats.queueDepth, 0);
        assert.equal(timers.size, 0);
      } finally {
        other.close();
      }
    });

    it('should roll back a half-written flush, including new devices, and retry it whole', function () {
      open({ flushIntervalMs: 1000 });
      db.exec(`CREATE TRIGGER poison BEFORE INSERT ON readings WHEN NEW.power_w = 666
               BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
      const errors: KasaError[] = [];
      writer.on('error', (error) => errors.push(error));
      writer.enqueue([reading(T0), reading(T0 + 1, { power_w: 666 })]);
      assert.equal(writer.flush(), false);
      assert.equal(count('devices'), 0);
      assert.equal(errors[0]?.details.transient, false);
      assert.match(errors[0].message, /disk on fire/);
      db.exec('DROP TRIGGER poison');
      timers.advance(1000);
      assert.equal(count(), 2);
      const orphans = db
        .prepare('SELECT count(*) FROM readings WHERE device NOT IN (SELECT id FROM devices)')
        .pluck()
        .get();
      assert.equal(orphans, 0);
    });

    it('should log instead of throwing when nobody listens for errors', function () {
      const logged: string[] = [];
      open({
        lockWaitMs: 0,
        logger: { debug() {}, info() {}, warn() {}, error: (m) => logged.push(m) },
      });
      const other = new Database(db.name);
      try {
        other.exec('BEGIN IMMEDIATE');
        writer.enqueue(readings(1));
        assert.equal(writer.flush(), false);
        assert.equal(logged.length, 1);
        other.exec('COMMIT');
      } finally {
        other.close();
      }
    });
  });
});
