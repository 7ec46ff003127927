import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { closeDatabase, openDatabase } from '../../../lib/store/database';
import type { RetentionProgress } from '../../../lib/store/retention';
import { runRetentionInWorker } from '../../../lib/store/retention-runner';
import { fieldCase } from '../../support/fixtures';
import { useTempDir } from '../../support/temp-dir';

const MiB = 1024 * 1024;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const START = Date.parse('2024-05-01T00:00:00Z');
const NOW = START + 10 * DAY;

describe('runRetentionInWorker', function () {
  this.timeout(60_000);
  const temp = useTempDir('kasa-retention-worker-');

  /** `devices` plugs at 10 s for `days` days from START, 1 Wh per reading; returns the file. */
  const build = (devices: number, days: number): { file: string; rows: number } => {
    const file = join(temp.dir(), 'w.db');
    const db = openDatabase(file);
    const insert = db.prepare(
      'INSERT INTO readings (device, ts, power_w, energy_wh) VALUES (?, ?, ?, 1)',
    );
    const perDevice = (days * DAY) / 10_000;
    db.transaction(() => {
      for (let d = 1; d <= devices; d++)
        for (let i = 0; i < perDevice; i++) insert.run(d, START + i * 10_000, 100 + (i % 50));
    })();
    closeDatabase(db);
    return { file, rows: devices * perDevice };
  };

  /** Readings left raw, samples in summaries, energy in all tiers, and the integrity check. */
  const inspect = (file: string) => {
    const db = new Database(file, { readonly: true });
    try {
      const one = (sql: string) => db.prepare(sql).pluck().get() as number;
      return {
        raw: one('SELECT count(*) FROM readings'),
        rolled: one('SELECT coalesce(sum(samples), 0) FROM hourly_summaries'),
        energy:
          one('SELECT coalesce(sum(energy_wh), 0) FROM readings') +
          one('SELECT coalesce(sum(energy_wh), 0) FROM hourly_summaries'),
        integrity: db.pragma('integrity_check', { simple: true }) as string,
      };
    } finally {
      db.close();
    }
  };

  it('runs on a worker thread and reports what it did', async () => {
    const { file, rows } = build(3, 2);
    const progress: RetentionProgress[] = [];
    const run = runRetentionInWorker(file, { now: NOW, rawDays: 0, timeZone: 'UTC' }, (p) =>
      progress.push(p),
    );
    const report = await run.result;
    assert.equal(report.rolled_up, rows);
    assert.equal(report.deleted, rows);
    assert.ok(report.db_bytes > 0);
    assert.ok(report.wal_bytes < 1024 * 1024, `WAL truncated after a large delete`);
    assert.ok(progress.length >= 2);
    assert.equal(progress.at(-1)?.phase, 'maintenance');
    assert.deepEqual(inspect(file), { raw: 0, rolled: rows, energy: rows, integrity: 'ok' });
  });

  it('a terminated run leaves the database consistent and the next run completes it', async () => {
    const { file, rows } = build(20, 2);
    const stop: { done?: Promise<void> } = {};
    const first = runRetentionInWorker(file, { now: NOW, rawDays: 0, budgetMs: 2 }, () => {
      stop.done ??= first.terminate();
    });
    await assert.rejects(first.result, /stopped/);
    await stop.done;
    const cut = inspect(file);
    assert.equal(cut.integrity, 'ok');
    assert.ok(cut.raw > 0 && cut.raw < rows, `interrupted mid-run: ${cut.raw} of ${rows} left`);
    // Every reading is counted exactly once: either still raw or in a summary.
    assert.equal(cut.raw + cut.rolled, rows);
    assert.ok(Math.abs(cut.energy - rows) < 1e-6);

    const second = await runRetentionInWorker(file, { now: NOW, rawDays: 0 }).result;
    assert.equal(second.rolled_up, cut.raw);
    assert.deepEqual(inspect(file), { raw: 0, rolled: rows, energy: rows, integrity: 'ok' });
  });

  it('reports a failure of the run as a coded rejection', async () => {
    const { file } = build(1, 1);
    await assert.rejects(runRetentionInWorker(file, { timeZone: 'Mars/Olympus' }).result, {
      code: 'RETENTION_FAILED',
      message: /time zone|Mars/i,
    });
  });

  it('case-020: a reader left open during a run pins the WAL; the next run truncates it', async () => {
    const { expected } = fieldCase('case-020-wal-grows-without-checkpoint');
    assert.match(expected.after_release, /< 4 MiB/);
    const { file, rows } = build(20, 2);
    const walBytes = () => statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;
    const reader = new Database(file, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM readings').get();
    let pinned: number;
    try {
      // The run must finish all the same, and its rows must be safe.
      const first = await runRetentionInWorker(file, { now: NOW, rawDays: 1, timeZone: 'UTC' })
        .result;
      assert.ok(first.deleted > 0);
      pinned = first.wal_bytes;
      assert.ok(pinned > 4 * MiB, `the reader kept the WAL from being reset (${pinned} bytes)`);
      assert.ok(pinned <= 64 * MiB, `the WAL stays under the journal size limit: ${pinned}`);
    } finally {
      reader.exec('COMMIT');
      reader.close();
    }
    // The next scheduled run (nothing left to roll up) still checkpoints and truncates.
    const second = await runRetentionInWorker(file, { now: NOW, rawDays: 1, timeZone: 'UTC' })
      .result;
    assert.ok(second.wal_bytes < 4 * MiB, `after release: ${second.wal_bytes} bytes`);
    assert.ok(walBytes() < 4 * MiB);
    const left = inspect(file);
    assert.equal(left.integrity, 'ok');
    assert.equal(left.raw + left.rolled, rows, 'every reading counted once');
  });
});
