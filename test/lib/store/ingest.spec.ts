import assert from 'node:assert/strict';
import { join } from 'node:path';

import type Database from 'better-sqlite3';

import { KasaError } from '../../../lib/errors';
import { closeDatabase, openDatabase } from '../../../lib/store/database';
import { ingest, writerHealth } from '../../../lib/store/ingest';
import { ReadingWriter, type WriterStats } from '../../../lib/store/writer';
import { useTempDir } from '../../support/temp-dir';

const TS = Date.parse('2024-05-01T12:00:00Z');

describe('ingest: a store message onto the writer', function () {
  const temp = useTempDir('kasa-ingest-');
  let db: Database.Database;
  let writer: ReadingWriter;
  beforeEach(function () {
    db = openDatabase(join(temp.dir(), 'ingest.db'));
    writer = new ReadingWriter(db, { batchSize: 1000, flushIntervalMs: 60_000, maxQueuedRows: 3 });
  });
  afterEach(function () {
    writer.close();
    closeDatabase(db);
  });

  it('queues the valid readings, devices and days and counts and names the rejected ones', function () {
    const result = ingest(
      writer,
      [{ device_id: 'plug-1', ts: TS, power_w: 5 }, 'hello', { device_id: 'plug-1', ts: NaN }],
      [{ device_id: 'plug-1', alias: 'Kettle' }],
      [
        {
          device_id: 'plug-1',
          day: '2024-04-30',
          day_start: Date.parse('2024-04-29T22:00:00Z'),
          energy_wh: 120,
          source: 'device',
        },
      ],
    );
    assert.deepEqual(
      { ...result, rejectedDetail: undefined },
      { readings: 1, devices: 1, days: 1, rejected: 2, total: 5, rejectedDetail: undefined },
    );
    assert.match(result.rejectedDetail, /payload\[1\]: a reading must be an object, got "hello"/);
    assert.match(result.rejectedDetail, /ts is not a valid time: NaN/);
    writer.flush();
    assert.equal(db.prepare('SELECT count(*) FROM readings').pluck().get(), 1);
  });

  it('lets the writer refuse a message that does not fit, queueing none of its readings', function () {
    const readings = [0, 1, 2, 3].map((i) => ({ device_id: 'plug-1', ts: TS + i * 1000 }));
    assert.throws(
      () => ingest(writer, readings, undefined, undefined),
      (error: unknown) => error instanceof KasaError && error.code === 'WRITER_QUEUE_FULL',
    );
    assert.equal(writer.stats.queueDepth, 0);
  });
});

describe('writerHealth', function () {
  const stats = (over: Partial<WriterStats>): WriterStats =>
    ({
      queueDepth: 0,
      maxQueuedRows: 100,
      failing: false,
      lastError: null,
      ...over,
    }) as WriterStats;
  const failure = (transient: boolean) => new KasaError('DB_WRITE_FAILED', 'locked', { transient });

  it('tells ok, a queue over 80 %, a retrying and a failed writer apart', function () {
    assert.deepEqual(writerHealth(stats({ queueDepth: 80 })), { state: 'ok', queued: 80 });
    assert.deepEqual(writerHealth(stats({ queueDepth: 81 })), {
      state: 'queue-high',
      queued: 81,
      max: 100,
    });
    assert.deepEqual(
      writerHealth(stats({ failing: true, lastError: failure(true), queueDepth: 5 })),
      { state: 'retrying', queued: 5 },
    );
    assert.deepEqual(writerHealth(stats({ failing: true, lastError: failure(false) })), {
      state: 'write-failed',
      queued: 0,
    });
  });
});
