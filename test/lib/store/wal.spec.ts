import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { toReading } from '../../../lib/readings/validate';
import { closeDatabase, openDatabase } from '../../../lib/store/database';
import { ReadingWriter } from '../../../lib/store/writer';
import type { Reading } from '../../../lib/types';
import { fieldCase } from '../../support/fixtures';
import { useTempDir } from '../../support/temp-dir';
import { FakeTimers } from './fake-timers';

const MiB = 1024 * 1024;
const DEVICES = 100;
const T0 = Date.parse('2024-05-01T00:00:00Z');

/** `count` readings of 100 plugs, interleaved by time as polling produces them. */
function readingsFrom(start: number, count: number): Reading[] {
  const out: Reading[] = [];
  for (let i = start; i < start + count; i++) {
    const device = i % DEVICES;
    const step = Math.floor(i / DEVICES);
    out.push(
      toReading({
        device_id: `8006${String(device).padStart(36, '0')}`,
        ts: T0 + step * 10_000 + device,
        power_w: 20 + device + (step % 17) * 0.731,
        voltage_v: 229.5 + (step % 9) * 0.113,
        current_a: 0.1 + device / 1000,
        total_wh: 1000 + step,
      }),
    );
  }
  return out;
}

describe('WAL growth (case-020)', function () {
  this.timeout(60_000);
  const temp = useTempDir();

  it('should cap the -wal file once a long reader lets go, and truncate it at the next maintenance', function () {
    const { input, expected } = fieldCase('case-020-wal-grows-without-checkpoint');
    assert.match(expected.after_release, /64 MiB/);
    const total = 300_000;
    const perTransaction = 500;
    assert.match(input.writes, /300,000 readings .* transactions of 500/);

    const file = join(temp.dir(), 'wal.db');
    const db = openDatabase(file);
    const timers = new FakeTimers();
    const writer = new ReadingWriter(db, {
      batchSize: perTransaction,
      clock: timers,
      timers,
      checkpointIntervalMs: 60_000,
    });
    const walBytes = () => statSync(`${file}-wal`).size;
    const reader = new Database(file, { readonly: true });
    try {
      // A dashboard query left open: its snapshot pins every WAL frame written after it.
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM readings').get();

      let maxWal = 0;
      for (let i = 0; i < total; i += perTransaction) {
        writer.enqueue(readingsFrom(i, perTransaction));
        writer.flush();
        maxWal = Math.max(maxWal, walBytes());
        if (i === total / 2) timers.advance(60_000);
      }
      assert.equal(writer.stats.rowsWritten, total);
      assert.equal(writer.stats.flushes, total / perTransaction);
      assert.ok(maxWal > 64 * MiB, `the reader pinned the WAL (max ${maxWal} bytes)`);
      assert.equal(writer.stats.lastCheckpoint?.busy, true, 'maintenance ran but had to wait');

      reader.exec('COMMIT');
      // Polling goes on: the first commit checkpoints, the next restarts the WAL at the limit.
      for (let i = 0; i < 2; i++) {
        writer.enqueue(readingsFrom(total + i * perTransaction, perTransaction));
        writer.flush();
      }
      assert.ok(walBytes() <= 65 * MiB, `after release: ${walBytes()} bytes`);

      timers.advance(60_000);
      writer.enqueue(readingsFrom(total + 2 * perTransaction, perTransaction));
      writer.flush();
      const checkpoint = writer.stats.lastCheckpoint;
      assert.ok(checkpoint.at >= timers.now() - 1, 'the checkpoint ran at this maintenance');
      assert.equal(checkpoint.busy, false);
      assert.ok(walBytes() < 4 * MiB, `after the scheduled checkpoint: ${walBytes()} bytes`);
    } finally {
      reader.close();
      writer.close();
      closeDatabase(db);
    }
  });
});
