import assert from 'node:assert/strict';
import { join, relative } from 'node:path';

import Database from 'better-sqlite3';

import { KasaError } from '../../../lib/errors';
import { toReadings } from '../../../lib/readings/validate';
import { DatabaseRegistry } from '../../../lib/store/registry';
import { useTempDir } from '../../support/temp-dir';

const T0 = Date.parse('2024-05-01T12:00:00Z');
const batch = (count: number) =>
  toReadings(
    Array.from({ length: count }, (_, i) => ({ device_id: 'plug', ts: T0 + i * 1000, power_w: 5 })),
  ).readings;

function rowsIn(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM readings').pluck().get() as number;
  } finally {
    db.close();
  }
}

describe('DatabaseRegistry', function () {
  const temp = useTempDir();
  let registry: DatabaseRegistry;

  beforeEach(function () {
    registry = new DatabaseRegistry();
  });

  afterEach(function () {
    assert.equal(registry.size, 0, 'every test releases what it acquired');
  });

  it('should share one connection and one writer per file, however the path is spelled', function () {
    const file = join(temp.dir(), 'shared.db');
    const a = registry.acquire(file);
    const b = registry.acquire(relative(process.cwd(), file));
    assert.equal(a.db, b.db);
    assert.equal(a.writer, b.writer);
    assert.equal(a.path, file);
    assert.equal(registry.users(file), 2);
    assert.deepEqual(registry.paths(), [file]);
    a.release();
    a.release();
    assert.equal(registry.users(file), 1, 'a second release of the same lease does nothing');
    assert.equal(b.db.open, true);
    b.release();
    assert.equal(b.db.open, false);
    assert.equal(registry.size, 0);
  });

  it('should flush on every release and close with the last, leaving all rows in the file', function () {
    const file = join(temp.dir(), 'flush.db');
    const keeper = registry.acquire(file);
    const user = registry.acquire(file, { flushIntervalMs: 60_000 });
    user.writer.enqueue(batch(10));
    user.release();
    assert.equal(rowsIn(file), 10, 'the release flushed while the file stays open');
    keeper.writer.enqueue(batch(20));
    keeper.release();
    assert.equal(rowsIn(file), 20);
    const again = registry.acquire(file);
    assert.equal(again.db.prepare('SELECT count(*) FROM readings').pluck().get(), 20);
    again.release();
  });

  it('should follow the most eager flush settings of the current users', function () {
    const file = join(temp.dir(), 'settings.db');
    const slow = registry.acquire(file, { batchSize: 5000, flushIntervalMs: 5000 });
    const fast = registry.acquire(file, { batchSize: 100, flushIntervalMs: 200 });
    assert.equal(slow.writer.stats.batchSize, 100);
    assert.equal(slow.writer.stats.flushIntervalMs, 200);
    fast.release();
    assert.equal(slow.writer.stats.batchSize, 5000);
    assert.equal(slow.writer.stats.flushIntervalMs, 5000);
    slow.release();
  });

  it('should remove the listeners a lease added when it is released', function () {
    const file = join(temp.dir(), 'listeners.db');
    const keeper = registry.acquire(file);
    const user = registry.acquire(file);
    user.on('error', () => undefined);
    user.on('flush', () => undefined);
    assert.equal(keeper.writer.listenerCount('error'), 1);
    user.release();
    assert.equal(keeper.writer.listenerCount('error'), 0);
    assert.equal(keeper.writer.listenerCount('flush'), 0);
    keeper.release();
  });

  it('should report an open failure with the path and keep nothing open', function () {
    const file = join(temp.dir(), 'no', 'such', 'dir', 'x.db');
    assert.throws(
      () => registry.acquire(file),
      (error: unknown) =>
        error instanceof KasaError &&
        error.code === 'DB_OPEN_FAILED' &&
        error.details.path === file,
    );
    assert.equal(registry.size, 0);
  });
});
