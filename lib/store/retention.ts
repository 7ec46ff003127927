import { performance } from 'node:perf_hooks';

import type Database from 'better-sqlite3';

import { type Clock, systemClock } from '../types';
import { fileBytes, vacuumsIncrementally, walBytes } from './database';
import { LocalDays, systemTimeZone } from './local-day';

/** Settings of one retention run. */
export interface RetentionOptions {
  /** Raw readings older than this are rolled up into hourly summaries, days. Default 7. */
  rawDays?: number;
  /** Hourly summaries older than this are rolled up into daily summaries, days. Default 30. */
  hourlyDays?: number;
  /** Daily summaries older than this are deleted, days. Default 365. */
  dailyDays?: number;
  /** IANA zone whose local days the daily summaries follow. Default: the system's zone. */
  timeZone?: string;
  /** Longest a write transaction should hold the lock, ms. Default 5: another connection
   * waiting for the lock polls with growing sleeps, so its wait is a few times this (bench: < 30). */
  budgetMs?: number;
  /** Rows deleted in a run above which the WAL is truncated afterwards. Default 10000. */
  checkpointAfterRows?: number;
  /** A -wal file larger than this is truncated after a run, bytes. Default 4 MiB. */
  walTruncateBytes?: number;
  /**
   * Give free pages back to the file system after the run. Only files created with
   * auto_vacuum=INCREMENTAL can (every file this package creates; see `vacuumsIncrementally`).
   */
  incrementalVacuum?: boolean;
  /** Shortest pause between two progress reports, ms. Default 250. */
  progressIntervalMs?: number;
  /**
   * Called before each write transaction; may block until it is this run's turn, so other
   * connections of the process get the lock between two transactions (see retention-runner).
   */
  beforeTransaction?: () => void;
  clock?: Clock;
}

export type RetentionPhase = 'raw' | 'hourly' | 'daily' | 'maintenance';

export interface RetentionProgress {
  phase: RetentionPhase;
  /** Rows rolled up so far (readings into hours plus hours into days). */
  rolled_up: number;
  /** Rows deleted so far, all tables. */
  deleted: number;
  /** Devices of the current phase done, and their number. */
  devices_done: number;
  devices_total: number;
}

/** What a run did; the kasa-retention node sends it as `msg.payload`. */
export interface RetentionReport {
  /** Readings rolled into hourly summaries plus hourly summaries rolled into daily ones. */
  rolled_up: number;
  /** Rows deleted from all three tables. */
  deleted: number;
  duration_ms: number;
  /** Size of the database file after the run, bytes. */
  db_bytes: number;
  /** Size of its -wal file after the run, bytes. */
  wal_bytes: number;
}

export const RETENTION_DEFAULTS = { rawDays: 7, hourlyDays: 30, dailyDays: 365 } as const;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Recombines an existing summary with a new partial one (`excluded`), so a bucket rolled up in
 * several pieces ends as if rolled up once: samples add up, the average is weighted by samples,
 * minimum and maximum combine, energy deltas add up. Null stays null only when both are null.
 * In an upsert every expression sees the old row, so the order of assignments does not matter.
 */
const MERGE = `
  samples = samples + excluded.samples,
  avg_power_w = CASE WHEN samples + excluded.samples = 0 THEN NULL ELSE
    (coalesce(avg_power_w * samples, 0) + coalesce(excluded.avg_power_w * excluded.samples, 0))
      / (samples + excluded.samples) END,
  min_power_w = coalesce(min(min_power_w, excluded.min_power_w), min_power_w, excluded.min_power_w),
  max_power_w = coalesce(max(max_power_w, excluded.max_power_w), max_power_w, excluded.max_power_w),
  energy_wh = CASE WHEN energy_wh IS NULL AND excluded.energy_wh IS NULL THEN NULL ELSE
    coalesce(energy_wh, 0) + coalesce(excluded.energy_wh, 0) END`;

/**
 * The statements; each touches one device's key range of one table, so it follows the primary
 * key (device, time) in physical order. The hourly average is sum/samples of the stored averages
 * weighted by their samples, so an empty bucket gives NULL, never 0/0.
 */
const SQL = {
  nextDevice: `SELECT device FROM readings WHERE device > ? ORDER BY device LIMIT 1`,
  nextHourlyDevice: `SELECT device FROM hourly_summaries WHERE device > ? ORDER BY device LIMIT 1`,
  nextDailyDevice: `SELECT device FROM daily_summaries WHERE device > ? ORDER BY device LIMIT 1`,
  firstReading: `SELECT ts FROM readings WHERE device = ? AND ts >= ? ORDER BY ts LIMIT 1`,
  rollReadings: `INSERT INTO hourly_summaries
      (device, hour_start, samples, avg_power_w, min_power_w, max_power_w, energy_wh)
    SELECT device, (ts / ${HOUR_MS}) * ${HOUR_MS} AS hour, count(power_w), avg(power_w),
      min(power_w), max(power_w), sum(energy_wh)
    FROM readings WHERE device = ? AND ts >= ? AND ts < ? GROUP BY hour
    ON CONFLICT (device, hour_start) DO UPDATE SET ${MERGE}`,
  deleteReadings: `DELETE FROM readings WHERE device = ? AND ts >= ? AND ts < ?`,
  firstHour: `SELECT hour_start FROM hourly_summaries WHERE device = ? AND hour_start >= ?
    ORDER BY hour_start LIMIT 1`,
  rollHours: `INSERT INTO daily_summaries
      (device, day, day_start, samples, avg_power_w, min_power_w, max_power_w, energy_wh)
    SELECT device, ?, ?, sum(samples),
      sum(avg_power_w * samples) / nullif(sum(CASE WHEN avg_power_w IS NULL THEN 0 ELSE samples END), 0),
      min(min_power_w), max(max_power_w), sum(energy_wh)
    FROM hourly_summaries WHERE device = ? AND hour_start >= ? AND hour_start < ?
    GROUP BY device
    ON CONFLICT (device, day) DO UPDATE SET day_start = excluded.day_start, ${MERGE}`,
  // Figures a device reported for a day of an outage give way to readings of that day.
  dropDeviceDay: `DELETE FROM daily_summaries WHERE device = ? AND day = ? AND source = 'device'`,
  deleteHours: `DELETE FROM hourly_summaries WHERE device = ? AND hour_start >= ? AND hour_start < ?`,
  deleteDays: `DELETE FROM daily_summaries WHERE device = ? AND day < ?`,
} as const;

/**
 * Tiered retention over one connection: raw readings past the raw horizon become hourly
 * summaries, hourly summaries past the hourly horizon become daily summaries (local days of the
 * configured zone), daily summaries past theirs are deleted. Each roll-up and the deletion of
 * exactly the rows it read share one short IMMEDIATE transaction, so a run stopped at any point
 * (even a killed process) leaves every row counted once, and the next run carries on.
 *
 * The run is synchronous and holds the write lock at most about `budgetMs` at a time: run it on a
 * worker thread with its own connection (see retention-worker) to keep an event loop free.
 */
export class RetentionEngine {
  private readonly rawMs: number;
  private readonly hourlyMs: number;
  private readonly dailyMs: number;
  private readonly days: LocalDays;
  private readonly budgetMs: number;
  private readonly clock: Clock;
  private readonly statements: { [K in keyof typeof SQL]: Database.Statement };
  private progress: RetentionProgress = {
    phase: 'raw',
    rolled_up: 0,
    deleted: 0,
    devices_done: 0,
    devices_total: 0,
  };
  private lastProgressAt = -Infinity;

  /** @throws RangeError for a negative or non-finite horizon, or an unknown time zone. */
  constructor(
    private readonly db: Database.Database,
    private readonly options: RetentionOptions = {},
  ) {
    this.rawMs = days(options.rawDays, RETENTION_DEFAULTS.rawDays, 'rawDays');
    this.hourlyMs = days(options.hourlyDays, RETENTION_DEFAULTS.hourlyDays, 'hourlyDays');
    this.dailyMs = days(options.dailyDays, RETENTION_DEFAULTS.dailyDays, 'dailyDays');
    this.days = new LocalDays(options.timeZone?.trim() || systemTimeZone());
    this.budgetMs = options.budgetMs ?? 5;
    this.clock = options.clock ?? systemClock;
    this.statements = Object.fromEntries(
      Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)]),
    ) as { [K in keyof typeof SQL]: Database.Statement };
    for (const name of ['nextDevice', 'nextHourlyDevice', 'nextDailyDevice'] as const)
      this.statements[name].pluck();
    for (const name of ['firstReading', 'firstHour'] as const) this.statements[name].pluck();
  }

  /**
   * One full run: roll-ups, pruning, then `PRAGMA optimize`, a TRUNCATE checkpoint after large
   * deletes and the optional incremental vacuum.
   *
   * @param onProgress called after the first transaction and then at most every
   *   `progressIntervalMs` (default 250 ms)
   */
  run(onProgress?: (progress: RetentionProgress) => void): RetentionReport {
    const started = performance.now();
    const now = this.clock.now();
    this.progress = { phase: 'raw', rolled_up: 0, deleted: 0, devices_done: 0, devices_total: 0 };
    this.lastProgressAt = -Infinity;
    const report = (force = false): void => {
      const at = performance.now();
      if (onProgress === undefined) return;
      if (!force && at - this.lastProgressAt < (this.options.progressIntervalMs ?? 250)) return;
      this.lastProgressAt = at;
      onProgress({ ...this.progress });
    };

    // Only whole hours are rolled up, so a bucket is written once in the usual case; late
    // readings of an hour already rolled up are merged into it by the next run.
    const rawCutoff = Math.floor((now - this.rawMs) / HOUR_MS) * HOUR_MS;
    this.rollReadings(rawCutoff, report);
    this.rollHours(now - this.hourlyMs, report);
    this.pruneDays(this.days.dayOf(now - this.dailyMs), report);

    this.progress.phase = 'maintenance';
    report(true);
    this.maintain();
    return {
      rolled_up: this.progress.rolled_up,
      deleted: this.progress.deleted,
      duration_ms: Math.round(performance.now() - started),
      ...this.sizes(),
    };
  }

  /** Size of the database file and its WAL, bytes (0 for a file that does not exist). */
  sizes(): { db_bytes: number; wal_bytes: number } {
    return { db_bytes: fileBytes(this.db.name), wal_bytes: walBytes(this.db) };
  }

  private rollReadings(cutoff: number, report: (force?: boolean) => void): void {
    const s = this.statements;
    this.startPhase('raw', s.nextDevice);
    const work = (device: number, from: number): number | null => {
      const start = s.firstReading.get(device, from) as number | undefined;
      if (start === undefined || start >= cutoff) return null;
      const hour = Math.floor(start / HOUR_MS) * HOUR_MS;
      const end = Math.min(hour + HOUR_MS, cutoff);
      s.rollReadings.run(device, hour, end);
      const { changes } = s.deleteReadings.run(device, hour, end);
      this.progress.rolled_up += changes;
      this.progress.deleted += changes;
      return end;
    };
    this.eachDevice(s.nextDevice, work, report);
  }

  private rollHours(cutoff: number, report: (force?: boolean) => void): void {
    const s = this.statements;
    this.startPhase('hourly', s.nextHourlyDevice);
    const work = (device: number, from: number): number | null => {
      const start = s.firstHour.get(device, from) as number | undefined;
      if (start === undefined) return null;
      const day = this.days.dayOf(start);
      const dayStart = this.days.startOf(day);
      const dayEnd = this.days.startOf(LocalDays.next(day));
      // Only days wholly past the horizon: a day is rolled up once, with all its hours.
      if (dayEnd > cutoff) return null;
      s.dropDeviceDay.run(device, day);
      s.rollHours.run(day, dayStart, device, dayStart, dayEnd);
      const { changes } = s.deleteHours.run(device, dayStart, dayEnd);
      this.progress.rolled_up += changes;
      this.progress.deleted += changes;
      return dayEnd;
    };
    this.eachDevice(s.nextHourlyDevice, work, report);
  }

  private pruneDays(firstKept: string, report: (force?: boolean) => void): void {
    const s = this.statements;
    this.startPhase('daily', s.nextDailyDevice);
    this.eachDevice(
      s.nextDailyDevice,
      (device) => {
        this.progress.deleted += s.deleteDays.run(device, firstKept).changes;
        return null;
      },
      report,
    );
  }

  private startPhase(phase: RetentionPhase, next: Database.Statement): void {
    let total = 0;
    for (let device = next.get(-Infinity); device !== undefined; device = next.get(device))
      total += 1;
    Object.assign(this.progress, { phase, devices_done: 0, devices_total: total });
  }

  /**
   * Runs `step` over each device in key order, each step resuming where the previous one ended
   * (null: the device is done), packing steps into IMMEDIATE transactions of about `budgetMs`.
   */
  private eachDevice(
    next: Database.Statement,
    step: (device: number, from: number) => number | null,
    report: (force?: boolean) => void,
  ): void {
    let device = next.get(-Infinity) as number | undefined;
    let from = -Infinity;
    let first = true;
    const slice = this.db.transaction(() => {
      const until = performance.now() + this.budgetMs;
      while (device !== undefined && performance.now() < until) {
        const resume = step(device, from);
        if (resume === null) {
          device = next.get(device) as number | undefined;
          from = -Infinity;
          this.progress.devices_done += 1;
        } else {
          from = resume;
        }
      }
    });
    while (device !== undefined) {
      this.options.beforeTransaction?.();
      slice.immediate();
      report(first);
      first = false;
    }
  }

  private maintain(): void {
    this.db.pragma('optimize');
    const walSize = walBytes(this.db);
    if (
      this.progress.deleted >= (this.options.checkpointAfterRows ?? 10_000) ||
      walSize > (this.options.walTruncateBytes ?? 4 * 1024 * 1024)
    ) {
      // After a large delete the WAL holds its peak size until truncated; so does a WAL that a
      // reader kept from being reset earlier (case-020), which this run can now let go of.
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    }
    if (this.options.incrementalVacuum === true) {
      if (vacuumsIncrementally(this.db)) {
        // In slices of 2000 pages (8 MiB at the default page size), each its own short write.
        while ((this.db.pragma('freelist_count', { simple: true }) as number) > 0) {
          this.options.beforeTransaction?.();
          this.db.pragma('incremental_vacuum(2000)');
        }
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      }
    }
  }
}

function days(value: number | undefined, fallback: number, name: string): number {
  const chosen = value ?? fallback;
  if (!Number.isFinite(chosen) || chosen < 0) {
    throw new RangeError(`${name} must be a number of days >= 0, got ${String(value)}`);
  }
  return chosen * DAY_MS;
}
