import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { KasaError } from '../../../lib/errors';
import { closeDatabase, openDatabase } from '../../../lib/store/database';
import {
  type Migration,
  migrate,
  MIGRATIONS,
  SCHEMA_VERSION,
  userVersion,
} from '../../../lib/store/schema';
import { useTempDir } from '../../support/temp-dir';

/** DESIGN.md's tables, column by column. */
const DESIGN_TABLES: Record<string, string[]> = {
  devices: [
    'id',
    'device_id',
    'parent_id',
    'child_id',
    'host',
    'port',
    'alias',
    'model',
    'hw_ver',
    'sw_ver',
    'mac',
    'has_emeter',
    'first_seen',
    'last_seen',
    'is_monitored',
  ],
  readings: ['device', 'ts', 'power_w', 'voltage_v', 'current_a', 'total_wh', 'energy_wh'],
  hourly_summaries: [
    'device',
    'hour_start',
    'samples',
    'avg_power_w',
    'min_power_w',
    'max_power_w',
    'energy_wh',
  ],
  daily_summaries: [
    'device',
    'day',
    'day_start',
    'samples',
    'avg_power_w',
    'min_power_w',
    'max_power_w',
    'energy_wh',
    'source',
  ],
};

const PRIMARY_KEYS: Record<string, string[]> = {
  devices: ['id'],
  readings: ['device', 'ts'],
  hourly_summaries: ['device', 'hour_start'],
  daily_summaries: ['device', 'day'],
};

describe('schema migrations', function () {
  const temp = useTempDir();

  it('should create DESIGN.md tables and record the version in user_version', function () {
    const db = openDatabase(join(temp.dir(), 'fresh.db'));
    try {
      assert.equal(userVersion(db), SCHEMA_VERSION);
      assert.ok(SCHEMA_VERSION >= 1);
      for (const [table, columns] of Object.entries(DESIGN_TABLES)) {
        const info = db.pragma(`table_info(${table})`) as { name: string; pk: number }[];
        assert.deepEqual(
          info.map((column) => column.name),
          columns,
          table,
        );
        const pk = info
          .filter((column) => column.pk > 0)
          .sort((a, b) => a.pk - b.pk)
          .map((column) => column.name);
        assert.deepEqual(pk, PRIMARY_KEYS[table], `${table} primary key`);
      }
      const sql = (name: string) =>
        (
          db.prepare('SELECT sql FROM sqlite_schema WHERE name = ?').get(name) as {
            sql: string;
          }
        ).sql;
      for (const table of ['readings', 'hourly_summaries', 'daily_summaries']) {
        assert.match(sql(table), /WITHOUT ROWID/, table);
      }
      assert.match(sql('devices'), /device_id TEXT UNIQUE NOT NULL/);
    } finally {
      closeDatabase(db);
    }
  });

  it('should not run migrations again when the database is reopened', function () {
    const file = join(temp.dir(), 'again.db');
    closeDatabase(openDatabase(file));
    const db = new Database(file);
    try {
      db.prepare("INSERT INTO devices (device_id, first_seen, last_seen) VALUES ('d', 1, 1)").run();
      assert.deepEqual(migrate(db), []);
      assert.equal(db.prepare('SELECT count(*) AS n FROM devices').pluck().get(), 1);
    } finally {
      db.close();
    }
  });

  it('should mark the daily rows of a version 1 database as rolled up from readings', function () {
    const db = new Database(':memory:');
    try {
      migrate(db, MIGRATIONS.slice(0, 1));
      db.prepare(
        `INSERT INTO daily_summaries (device, day, day_start, samples, energy_wh)
         VALUES (1, '2024-03-01', 0, 10, 5)`,
      ).run();
      assert.deepEqual(migrate(db), [2]);
      assert.deepEqual(db.prepare('SELECT day, energy_wh, source FROM daily_summaries').all(), [
        { day: '2024-03-01', energy_wh: 5, source: 'readings' },
      ]);
    } finally {
      db.close();
    }
  });

  it('should run only the steps past the recorded version, in order', function () {
    const db = new Database(':memory:');
    try {
      const ran: number[] = [];
      const steps: Migration[] = [1, 2, 3].map((version) => ({
        version,
        description: `step ${version}`,
        up: (handle) => {
          ran.push(version);
          handle.exec(`CREATE TABLE t${version} (x)`);
        },
      }));
      assert.deepEqual(migrate(db, steps.slice(0, 2)), [1, 2]);
      assert.deepEqual(migrate(db, steps), [3]);
      assert.deepEqual(ran, [1, 2, 3]);
      assert.equal(userVersion(db), 3);
    } finally {
      db.close();
    }
  });

  it('should leave the version unchanged when a step fails', function () {
    const db = new Database(':memory:');
    try {
      const steps: Migration[] = [
        { version: 1, description: 'ok', up: (handle) => handle.exec('CREATE TABLE a (x)') },
        {
          version: 2,
          description: 'breaks',
          up: (handle) => {
            handle.exec('CREATE TABLE b (x)');
            throw new Error('boom');
          },
        },
      ];
      assert.throws(() => migrate(db, steps), /boom/);
      assert.equal(userVersion(db), 1);
      const tables = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .pluck()
        .all();
      assert.deepEqual(tables, ['a']);
    } finally {
      db.close();
    }
  });

  it('should refuse a database written by a newer version of the package', function () {
    const file = join(temp.dir(), 'newer.db');
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(
      () => openDatabase(file),
      (error: unknown) =>
        error instanceof KasaError &&
        error.code === 'DB_OPEN_FAILED' &&
        /newer than this package/.test(error.message),
    );
  });
});

describe('openDatabase()', function () {
  const temp = useTempDir();

  it('should tune the connection for time series', function () {
    const db = openDatabase(join(temp.dir(), 'tuned.db'));
    try {
      const pragma = (name: string) => db.pragma(name, { simple: true });
      assert.equal(pragma('journal_mode'), 'wal');
      assert.equal(pragma('synchronous'), 1); // NORMAL
      assert.equal(pragma('busy_timeout'), 5000);
      assert.equal(pragma('journal_size_limit'), 64 * 1024 * 1024);
      assert.equal(pragma('temp_store'), 2); // MEMORY
      assert.ok((pragma('cache_size') as number) < 0, 'cache bounded in KiB');
      assert.ok((pragma('mmap_size') as number) > 0);
    } finally {
      closeDatabase(db);
    }
  });

  it('should name the path and the cause when the directory does not exist', function () {
    const file = join(temp.dir(), 'missing', 'x.db');
    assert.throws(
      () => openDatabase(file),
      (error: unknown) =>
        error instanceof KasaError &&
        error.code === 'DB_OPEN_FAILED' &&
        error.details.path === file &&
        error.message.includes(file) &&
        /directory does not exist/.test(error.message),
    );
  });

  it('should name the path and the cause when the file is not a database', function () {
    const file = join(temp.dir(), 'notes.txt');
    writeFileSync(file, 'this is not a database, just some text that is long enough '.repeat(20));
    assert.throws(
      () => openDatabase(file),
      (error: unknown) =>
        error instanceof KasaError &&
        error.code === 'DB_OPEN_FAILED' &&
        error.message.includes(file) &&
        /not a database/.test(error.message),
    );
  });
});
