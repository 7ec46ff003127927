import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';

import type Database from 'better-sqlite3';

import { errorMessage, KasaError } from '../errors';
import { EnergyTracker } from '../readings/energy';
import {
  type Clock,
  type DeviceDay,
  type DeviceInfo,
  type Logger,
  type Reading,
  silentLogger,
  systemClock,
  systemTimers,
  type Timers,
} from '../types';
import { sqliteCodeOf, walBytes } from './database';

export const DEFAULT_BATCH_SIZE = 1000;
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;

export interface ReadingWriterOptions {
  /** Rows queued that trigger an immediate flush. Default 1000. */
  batchSize?: number;
  /** Longest time a queued row waits for its flush, ms. Default 1000. */
  flushIntervalMs?: number;
  /** Rows the queue holds at most; beyond that `enqueue` refuses. Default 100000. */
  maxQueuedRows?: number;
  /** Longest wait between retries of a failing flush, ms. Default 30000. */
  maxRetryDelayMs?: number;
  /**
   * How long a flush waits for another connection's write lock before giving up until the next
   * retry, ms. Default 250: longer waits would stall Node-RED's event loop.
   */
  lockWaitMs?: number;
  /** How often, at most, a flush is followed by a WAL size check, ms. Default 60000. */
  checkpointIntervalMs?: number;
  /** WAL size above which that check runs a TRUNCATE checkpoint, bytes. Default 4 MiB. */
  walTruncateBytes?: number;
  clock?: Clock;
  timers?: Timers;
  logger?: Logger;
}

/** What one successful flush did. */
export interface FlushInfo {
  rows: number;
  written: number;
  duplicates: number;
  ms: number;
}

/** Sent once when flushes work again after failing. */
export interface RecoveredInfo {
  /** How long writes failed, ms. */
  failedForMs: number;
  attempts: number;
}

export interface CheckpointResult {
  /** True when a reader kept the checkpoint from finishing. */
  busy: boolean;
  /** WAL frames before the checkpoint. */
  logFrames: number;
  /** Frames copied into the database file. */
  checkpointedFrames: number;
  /** -wal file size after the checkpoint, bytes. */
  walBytes: number;
  at: number;
}

export interface WriterStats {
  rowsWritten: number;
  duplicates: number;
  flushes: number;
  /** Flush attempts that failed (each retry counts). */
  failures: number;
  /** Duration of the last successful flush, ms. */
  lastFlushMs: number;
  lastFlushRows: number;
  queueDepth: number;
  maxQueuedRows: number;
  /** Current flush triggers (they change when nodes sharing the writer come and go). */
  batchSize: number;
  flushIntervalMs: number;
  /** True while flushes fail and rows wait for a retry. */
  failing: boolean;
  lastError: KasaError | null;
  lastCheckpoint: CheckpointResult | null;
}

interface WriterEvents {
  error: [KasaError];
  recovered: [RecoveredInfo];
  flush: [FlushInfo];
}

interface DeviceSlot {
  /** devices.id; 0 until known (a rolled-back flush also resets it). */
  id: number;
  /** Number of the flush that last touched this device, so it is updated once per flush. */
  mark: number;
  /** This flush's rows of the device, in arrival order; emptied after every flush. */
  pending: Reading[];
}

/**
 * A full batch is written after a pause as long as the previous flush took (0 when idle), so
 * under load messages keep arriving and join the same transaction: one commit rewrites every
 * leaf page it touched, which costs as much as a few thousand row inserts. Only this many
 * batches queued at once force a flush on the spot.
 */
const BURST_BATCHES = 10;

const TRANSIENT_SQLITE_CODES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED']);

/**
 * The one batched writer of a readings database. Readings wait in a bounded in-memory queue and
 * are written in one IMMEDIATE transaction per flush: when `batchSize` rows are queued (after a
 * pause as long as the last flush took, so a burst of messages shares one commit), when
 * `flushIntervalMs` has passed since the oldest one arrived, and on close.
 *
 * - Back-pressure: a call that would take the queue past `maxQueuedRows` is refused whole
 *   (`WRITER_QUEUE_FULL`); rows once accepted are never dropped.
 * - A row whose (device, ts) is already stored is ignored and counted in `duplicates`.
 * - A reading without `energy_wh` but with `total_wh` gets its energy from an EnergyTracker
 *   seeded with the device's last stored counter.
 * - A failing flush (lock held elsewhere, I/O error, read-only file) keeps every row queued and is
 *   retried with a doubling delay; `error` is emitted when the failure starts or changes,
 *   `recovered` when a flush works again.
 *
 * Events: `error` (KasaError `DB_WRITE_FAILED`), `recovered` (RecoveredInfo), `flush` (FlushInfo).
 * `enqueue` takes ownership of the reading objects (it may fill in `energy_wh`).
 */
export class ReadingWriter extends EventEmitter<WriterEvents> {
  private batchSize: number;
  private flushIntervalMs: number;
  private readonly maxQueuedRows: number;
  private readonly maxRetryDelayMs: number;
  private readonly lockWaitMs: number;
  private readonly checkpointIntervalMs: number;
  private readonly walTruncateBytes: number;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly connectionBusyMs: number;

  private queue: Reading[] = [];
  private readonly pendingDevices = new Map<string, DeviceInfo>();
  /** Device-reported days by `device_id|day`; a later report of a day replaces an earlier one. */
  private readonly pendingDays = new Map<string, DeviceDay>();
  private readonly slots = new Map<string, DeviceSlot>();
  private readonly energy = new EnergyTracker();
  private timer: unknown = null;
  /** Delay the pending timer was set with; 0 means "after the current burst of messages". */
  private timerDueMs = 0;
  private flushNo = 0;
  private createdInFlush: DeviceSlot[] = [];
  private isClosed = false;
  private failingSince: number | null = null;
  private failedAttempts = 0;
  private lastFailureKey: string | null = null;
  private lastMaintenanceAt: number;

  private readonly counters = {
    rowsWritten: 0,
    duplicates: 0,
    flushes: 0,
    failures: 0,
    lastFlushMs: 0,
    lastFlushRows: 0,
  };
  private lastError: KasaError | null = null;
  private lastCheckpoint: CheckpointResult | null = null;

  private readonly insertReading: Database.Statement;
  private readonly findDevice: Database.Statement<[string], { id: number }>;
  private readonly insertDevice: Database.Statement;
  private readonly touchDevice: Database.Statement;
  private readonly upsertDeviceRow: Database.Statement<unknown[], { id: number }>;
  private readonly insertDeviceDay: Database.Statement;
  private readonly lastCounter: Database.Statement<[string], { ts: number; total_wh: number }>;
  private readonly writeBatch: Database.Transaction<(rows: Reading[]) => number>;

  constructor(
    private readonly db: Database.Database,
    options: ReadingWriterOptions = {},
  ) {
    super();
    this.batchSize = positive(options.batchSize, DEFAULT_BATCH_SIZE);
    this.flushIntervalMs = positive(options.flushIntervalMs, DEFAULT_FLUSH_INTERVAL_MS);
    this.maxQueuedRows = positive(options.maxQueuedRows, 100_000);
    this.maxRetryDelayMs = positive(options.maxRetryDelayMs, 30_000);
    this.lockWaitMs = Math.max(0, options.lockWaitMs ?? 250);
    this.checkpointIntervalMs = positive(options.checkpointIntervalMs, 60_000);
    this.walTruncateBytes = Math.max(0, options.walTruncateBytes ?? 4 * 1024 * 1024);
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.logger = options.logger ?? silentLogger;
    this.connectionBusyMs = db.pragma('busy_timeout', { simple: true }) as number;
    this.lastMaintenanceAt = this.clock.now();

    this.insertReading = db.prepare(
      `INSERT INTO readings (device, ts, power_w, voltage_v, current_a, total_wh, energy_wh)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, ts) DO NOTHING`,
    );
    this.findDevice = db.prepare('SELECT id FROM devices WHERE device_id = ?');
    this.insertDevice = db.prepare(
      `INSERT INTO devices (device_id, child_id, host, port, alias, model, has_emeter,
                            first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.touchDevice = db.prepare(
      `UPDATE devices SET alias = COALESCE(?, alias), model = COALESCE(?, model),
              host = COALESCE(?, host), port = COALESCE(?, port),
              child_id = COALESCE(?, child_id), has_emeter = MAX(has_emeter, ?),
              last_seen = MAX(last_seen, ?)
       WHERE id = ?`,
    );
    this.upsertDeviceRow = db.prepare(
      `INSERT INTO devices (device_id, parent_id, child_id, host, port, alias, model, hw_ver,
                            sw_ver, mac, has_emeter, first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET
         parent_id = COALESCE(excluded.parent_id, parent_id),
         child_id = COALESCE(excluded.child_id, child_id),
         host = COALESCE(excluded.host, host), port = COALESCE(excluded.port, port),
         alias = COALESCE(excluded.alias, alias), model = COALESCE(excluded.model, model),
         hw_ver = COALESCE(excluded.hw_ver, hw_ver), sw_ver = COALESCE(excluded.sw_ver, sw_ver),
         mac = COALESCE(excluded.mac, mac), has_emeter = excluded.has_emeter,
         last_seen = MAX(last_seen, excluded.last_seen)
       RETURNING id`,
    );
    // A day that already has a summary keeps it: figures from readings are the finer record.
    this.insertDeviceDay = db.prepare(
      `INSERT INTO daily_summaries (device, day, day_start, samples, energy_wh, source)
       VALUES (?, ?, ?, 0, ?, 'device') ON CONFLICT (device, day) DO NOTHING`,
    );
    this.lastCounter = db.prepare(
      `SELECT ts, total_wh FROM readings
       WHERE device = (SELECT id FROM devices WHERE device_id = ?) AND total_wh IS NOT NULL
       ORDER BY ts DESC LIMIT 1`,
    );
    this.writeBatch = db.transaction((rows: Reading[]) => this.writeRows(rows));
  }

  /**
   * Queues valid readings for the next flush, filling in `energy_wh` from `total_wh` where it is
   * missing. Flushes at once when `batchSize` rows are queued (unless writes are failing).
   *
   * @throws KasaError `WRITER_QUEUE_FULL` (nothing of this call is queued) or `WRITER_CLOSED`.
   */
  enqueue(readings: readonly Reading[]): void {
    this.assertOpen();
    if (readings.length === 0) return;
    if (this.queue.length + readings.length > this.maxQueuedRows) {
      throw new KasaError(
        'WRITER_QUEUE_FULL',
        `the write queue of ${this.db.name} is full (${this.queue.length} of ${this.maxQueuedRows} rows queued); ${readings.length} readings refused`,
        {
          path: this.db.name,
          queued: this.queue.length,
          max: this.maxQueuedRows,
          refused: readings.length,
        },
      );
    }
    const queue = this.queue;
    for (const reading of readings) {
      if (reading.total_wh !== null) this.trackEnergy(reading, reading.total_wh);
      queue.push(reading);
    }
    if (this.failingSince !== null) return;
    if (queue.length >= this.batchSize * BURST_BATCHES) {
      this.flush();
    } else if (queue.length >= this.batchSize) {
      this.schedule(Math.min(Math.floor(this.counters.lastFlushMs), this.flushIntervalMs));
    } else {
      this.schedule(this.flushIntervalMs);
    }
  }

  /**
   * Records devices in the `devices` table at the next flush, readings or not (a plug without
   * an energy meter has `has_emeter` false). Later values replace earlier ones; null fields keep
   * what is stored.
   *
   * @throws KasaError `WRITER_CLOSED`.
   */
  upsertDevices(devices: readonly DeviceInfo[]): void {
    this.assertOpen();
    for (const device of devices) this.pendingDevices.set(device.device_id, device);
    if (this.pendingDevices.size > 0) this.schedule(this.flushIntervalMs);
  }

  /**
   * Records days of an outage that a device filled from its own statistics, at the next flush,
   * as daily summaries marked `source = 'device'`. Days that already have a summary are left
   * as they are, and a later roll-up of readings for such a day replaces the device's figure.
   *
   * @throws KasaError `WRITER_CLOSED`.
   */
  addDeviceDays(days: readonly DeviceDay[]): void {
    this.assertOpen();
    for (const day of days) this.pendingDays.set(`${day.device_id}|${day.day}`, day);
    if (this.pendingDays.size > 0) this.schedule(this.flushIntervalMs);
  }

  /** {@link upsertDevices} for one device. */
  upsertDevice(device: DeviceInfo): void {
    this.upsertDevices([device]);
  }

  /**
   * Writes everything queued in one transaction now.
   *
   * @returns true when the queue is empty afterwards; false when the write failed (the rows stay
   *   queued and a retry is scheduled).
   */
  flush(): boolean {
    return this.flushWith(this.lockWaitMs);
  }

  /** Changes the flush triggers of a running writer (e.g. when a second node shares it). */
  configure(options: Pick<ReadingWriterOptions, 'batchSize' | 'flushIntervalMs'>): void {
    this.batchSize = positive(options.batchSize, this.batchSize);
    this.flushIntervalMs = positive(options.flushIntervalMs, this.flushIntervalMs);
  }

  /**
   * Copies the WAL into the database and truncates it, without waiting for readers: when a
   * reader still needs old frames the result says `busy` and the WAL keeps its size.
   */
  checkpoint(): CheckpointResult {
    const rows = this.withBusyTimeout(0, () => this.db.pragma('wal_checkpoint(TRUNCATE)')) as {
      busy: number;
      log: number;
      checkpointed: number;
    }[];
    const row = rows[0] ?? { busy: 1, log: -1, checkpointed: -1 };
    this.lastCheckpoint = {
      busy: row.busy !== 0,
      logFrames: row.log,
      checkpointedFrames: row.checkpointed,
      walBytes: this.walBytes(),
      at: this.clock.now(),
    };
    return this.lastCheckpoint;
  }

  /** Current size of the -wal file, bytes (0 when there is none). */
  walBytes(): number {
    return walBytes(this.db);
  }

  /**
   * Stops the timers and writes what is queued, waiting up to the connection's busy timeout for
   * a lock. Idempotent. Does not close the database.
   *
   * @returns the number of rows that could not be written (0 unless the final flush failed).
   */
  close(): number {
    if (this.isClosed) return 0;
    this.isClosed = true;
    this.clearTimer();
    if (!this.flushWith(this.connectionBusyMs)) {
      const lost = this.queue.length;
      this.logger.error(
        `${lost} readings could not be written to ${this.db.name} before closing: ${this.lastError?.message ?? 'unknown error'}`,
      );
      this.queue = [];
      return lost;
    }
    return 0;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get stats(): WriterStats {
    return {
      ...this.counters,
      queueDepth: this.queue.length,
      maxQueuedRows: this.maxQueuedRows,
      batchSize: this.batchSize,
      flushIntervalMs: this.flushIntervalMs,
      failing: this.failingSince !== null,
      lastError: this.lastError,
      lastCheckpoint: this.lastCheckpoint,
    };
  }

  private flushWith(lockWaitMs: number): boolean {
    this.clearTimer();
    const rows = this.queue;
    if (rows.length === 0 && this.pendingDevices.size === 0 && this.pendingDays.size === 0) {
      return true;
    }
    const started = performance.now();
    let written: number;
    try {
      written = this.withBusyTimeout(lockWaitMs, () => this.writeBatch.immediate(rows));
    } catch (error) {
      for (const slot of this.createdInFlush) slot.id = 0;
      this.createdInFlush = [];
      this.failed(error, rows.length);
      return false;
    }
    this.createdInFlush = [];
    this.queue = [];
    this.pendingDevices.clear();
    this.pendingDays.clear();
    const ms = performance.now() - started;
    const counters = this.counters;
    counters.rowsWritten += written;
    counters.duplicates += rows.length - written;
    counters.flushes += 1;
    counters.lastFlushMs = ms;
    counters.lastFlushRows = rows.length;
    if (this.failingSince !== null) this.recovered();
    this.emit('flush', { rows: rows.length, written, duplicates: rows.length - written, ms });
    this.maintain();
    return true;
  }

  private writeRows(rows: Reading[]): number {
    const flushNo = ++this.flushNo;
    const touched: DeviceSlot[] = [];
    const now = this.clock.now();
    for (const info of this.pendingDevices.values()) this.writeDevice(info, now);
    // Rows go in device by device: consecutive inserts then land on the same b-tree leaf, which
    // is 10-20% cheaper than the time-interleaved order polling produces.
    for (const row of rows) {
      let slot = this.slots.get(row.device_id);
      if (slot === undefined || slot.id === 0) slot = this.resolveSlot(row, slot);
      if (slot.mark !== flushNo) {
        slot.mark = flushNo;
        slot.pending.length = 0;
        touched.push(slot);
      }
      slot.pending.push(row);
    }
    const insert = this.insertReading;
    let written = 0;
    try {
      for (const slot of touched) {
        let latest = slot.pending[0] ?? null;
        for (const row of slot.pending) {
          written += insert.run(
            slot.id,
            row.ts,
            row.power_w,
            row.voltage_v,
            row.current_a,
            row.total_wh,
            row.energy_wh,
          ).changes;
          if (latest !== null && row.ts >= latest.ts) latest = row;
        }
        if (latest !== null) {
          const r = latest;
          this.touchDevice.run(
            r.alias,
            r.model,
            r.host,
            r.port,
            r.child_id,
            hasMeter(r),
            r.ts,
            slot.id,
          );
        }
      }
    } finally {
      for (const slot of touched) slot.pending.length = 0;
    }
    for (const day of this.pendingDays.values()) this.writeDeviceDay(day, now);
    return written;
  }

  private writeDeviceDay(day: DeviceDay, now: number): void {
    let id = this.slots.get(day.device_id)?.id ?? 0;
    if (id === 0) id = this.findDevice.get(day.device_id)?.id ?? 0;
    if (id === 0) {
      this.writeDevice(
        {
          device_id: day.device_id,
          parent_id: null,
          child_id: null,
          host: null,
          port: null,
          alias: null,
          model: null,
          hw_ver: null,
          sw_ver: null,
          mac: null,
          has_emeter: true,
        },
        now,
      );
      id = this.slots.get(day.device_id)?.id ?? 0;
    }
    this.insertDeviceDay.run(id, day.day, day.day_start, day.energy_wh);
  }

  private resolveSlot(row: Reading, existing: DeviceSlot | undefined): DeviceSlot {
    const slot = existing ?? { id: 0, mark: 0, pending: [] };
    const found = this.findDevice.get(row.device_id);
    if (found !== undefined) {
      slot.id = found.id;
    } else {
      const result = this.insertDevice.run(
        row.device_id,
        row.child_id,
        row.host,
        row.port,
        row.alias,
        row.model,
        hasMeter(row),
        row.ts,
        row.ts,
      );
      slot.id = Number(result.lastInsertRowid);
      this.createdInFlush.push(slot);
    }
    this.slots.set(row.device_id, slot);
    return slot;
  }

  private writeDevice(info: DeviceInfo, now: number): void {
    const row = this.upsertDeviceRow.get(
      info.device_id,
      info.parent_id,
      info.child_id,
      info.host,
      info.port,
      info.alias,
      info.model,
      info.hw_ver,
      info.sw_ver,
      info.mac,
      info.has_emeter ? 1 : 0,
      now,
      now,
    );
    if (row === undefined) return;
    const slot = this.slots.get(info.device_id);
    if (slot === undefined) {
      const created = { id: row.id, mark: 0, pending: [] };
      this.slots.set(info.device_id, created);
      this.createdInFlush.push(created);
    } else if (slot.id === 0) {
      slot.id = row.id;
      this.createdInFlush.push(slot);
    }
  }

  private trackEnergy(reading: Reading, totalWh: number): void {
    const energy = this.energy;
    if (!energy.has(reading.device_id)) this.seedEnergy(reading.device_id);
    const step = energy.next(reading.device_id, { ts: reading.ts, total_wh: totalWh });
    if (reading.energy_wh === null) reading.energy_wh = step.energy_wh;
  }

  private seedEnergy(deviceId: string): void {
    try {
      const last = this.lastCounter.get(deviceId);
      if (last !== undefined) {
        this.energy.seed(deviceId, { total_wh: last.total_wh, on_time_s: null, ts: last.ts });
      }
    } catch (error) {
      // Without a baseline the device's first energy is null, which is honest; the rows matter more.
      this.logger.warn(`cannot read the last counter of ${deviceId}: ${errorMessage(error)}`);
    }
  }

  private failed(error: unknown, rows: number): void {
    const now = this.clock.now();
    const sqliteCode = sqliteCodeOf(error);
    const transient = sqliteCode !== null && TRANSIENT_SQLITE_CODES.has(sqliteCode);
    this.counters.failures += 1;
    this.failedAttempts += 1;
    this.failingSince ??= now;
    const wrapped = new KasaError(
      'DB_WRITE_FAILED',
      `cannot write ${rows} readings to ${this.db.name}: ${errorMessage(error)}; they stay queued`,
      { path: this.db.name, rows, sqliteCode, transient, cause: errorMessage(error) },
      { cause: error },
    );
    this.lastError = wrapped;
    const key = sqliteCode ?? errorMessage(error);
    if (key !== this.lastFailureKey) {
      this.lastFailureKey = key;
      if (this.listenerCount('error') > 0) this.emit('error', wrapped);
      else this.logger.error(wrapped.message);
    }
    if (!this.isClosed) {
      const delay = Math.min(
        this.flushIntervalMs * 2 ** Math.min(this.failedAttempts - 1, 20),
        this.maxRetryDelayMs,
      );
      this.timerDueMs = delay;
      this.timer = this.timers.setTimeout(() => {
        this.timer = null;
        this.flush();
      }, delay);
    }
  }

  private recovered(): void {
    const info = {
      failedForMs: this.clock.now() - (this.failingSince ?? this.clock.now()),
      attempts: this.failedAttempts,
    };
    this.failingSince = null;
    this.failedAttempts = 0;
    this.lastFailureKey = null;
    this.emit('recovered', info);
  }

  private maintain(): void {
    const now = this.clock.now();
    if (now - this.lastMaintenanceAt < this.checkpointIntervalMs) return;
    this.lastMaintenanceAt = now;
    try {
      if (this.walBytes() > this.walTruncateBytes) this.checkpoint();
    } catch (error) {
      this.logger.warn(`checkpoint of ${this.db.name} failed: ${errorMessage(error)}`);
    }
  }

  private withBusyTimeout<T>(ms: number, work: () => T): T {
    if (ms === this.connectionBusyMs) return work();
    this.db.pragma(`busy_timeout = ${ms}`);
    try {
      return work();
    } finally {
      this.db.pragma(`busy_timeout = ${this.connectionBusyMs}`);
    }
  }

  /** Sets the flush timer unless one is due sooner (a retry timer is never replaced). */
  private schedule(ms: number): void {
    if (this.isClosed) return;
    if (this.timer !== null) {
      if (this.timerDueMs <= ms || this.failingSince !== null) return;
      this.timers.clearTimeout(this.timer);
    }
    this.timerDueMs = ms;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.flush();
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer === null) return;
    this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private assertOpen(): void {
    if (this.isClosed) {
      throw new KasaError('WRITER_CLOSED', `the writer of ${this.db.name} is closed`, {
        path: this.db.name,
      });
    }
  }
}

function hasMeter(reading: Reading): number {
  return reading.power_w !== null || reading.total_wh !== null ? 1 : 0;
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}
