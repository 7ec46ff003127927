// Query benchmark at 10 M raw readings: the three queries of the issue, run many times through
// lib/store/query.ts's QueryEngine in this process (not through Node-RED: the engine is what the
// query node calls synchronously, and a flow hop would add the same constant to every query).
// The database is built once into bench/results/query-10m.db (git-ignored) and reused while its
// recorded parameters match, so reruns take seconds. `npx tsx bench/query.ts` prints the table.
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';

import type Database from 'better-sqlite3';

import { closeDatabase, openDatabase } from '../lib/store/database';
import { HOUR_MS, QueryEngine } from '../lib/store/query';
import { median, quantile } from './support/stats';

const DEVICES = 100;
const INTERVAL_MS = 10_000;
const ROWS = 10_000_000;
const PER_DEVICE = ROWS / DEVICES;
/** Newest reading + 10 s; the engine's clock stands here, so `auto` sees the data as recent. */
const END = Date.parse('2025-01-06T00:00:00Z');
const START = END - PER_DEVICE * INTERVAL_MS;
const DAY_MS = 24 * HOUR_MS;
/** Hourly summaries reach this far back, as retention would leave them. */
const HOURLY_FROM = END - 30 * DAY_MS;
const ROWS_PER_TRANSACTION = 500_000;
/** Bump when the generated data changes, so an old cached file is rebuilt. */
const GENERATOR = 1;
const FILE = join(__dirname, 'results', 'query-10m.db');

export interface QueryFigure {
  name: string;
  /** The issue's bound on the median, ms; null for figures given for context. */
  targetMs: number | null;
  medianMs: number;
  p99Ms: number;
  reps: number;
  /** Rows each call returned. */
  rows: number;
  /** The table the query read. */
  tier: string;
}

export interface QueryBenchResult {
  runtime: string;
  database: {
    file: string;
    rows: number;
    devices: number;
    bytes: number;
    /** False when a cached file was reused. */
    built: boolean;
    buildMs: number;
  };
  figures: QueryFigure[];
  durationMs: number;
}

/** Builds or reuses the 10 M row database, then measures medians of many runs of each query. */
export function runQueryBench(): QueryBenchResult {
  const started = performance.now();
  const build = ensureDatabase();
  const db = openDatabase(FILE);
  try {
    const engine = new QueryEngine(db, { clock: { now: () => END } });
    const ids = db.prepare('SELECT device_id FROM devices ORDER BY id').pluck().all() as string[];
    const pick = (i: number) => ids[(i * 37) % ids.length] as string;
    const figures: QueryFigure[] = [
      measure('last 100 readings of a device', 1, 3000, engine, (i) => ({
        type: 'history',
        device_id: pick(i),
        order: 'desc',
        limit: 100,
      })),
      measure('latest reading of each of 100 devices', 2, 2000, engine, () => ({
        type: 'latest',
      })),
      measure('  the same, the 100 ids named in device_ids', 2, 2000, engine, () => ({
        type: 'latest',
        device_ids: ids,
      })),
      measure('hourly averages of a device over 30 days', 5, 2000, engine, (i) => ({
        type: 'summary',
        device_id: pick(i),
        from: END - 30 * DAY_MS,
        to: END,
        tier: 'auto',
        fields: ['avg_power_w'],
      })),
      measure('  hour buckets from raw readings, 1 day', null, 300, engine, (i) => ({
        type: 'summary',
        device_id: pick(i),
        from: END - DAY_MS,
        to: END,
        tier: 'auto',
      })),
      measure('  1000 raw readings of a device, by time', null, 1000, engine, (i) => ({
        type: 'history',
        device_id: pick(i),
        from: END - 3 * DAY_MS,
      })),
    ];
    return {
      runtime: 'lib/store/query.ts QueryEngine.run in the bench process (not through Node-RED)',
      database: {
        file: FILE,
        rows: ROWS,
        devices: DEVICES,
        bytes: statSync(FILE).size,
        built: build.built,
        buildMs: build.ms,
      },
      figures,
      durationMs: performance.now() - started,
    };
  } finally {
    closeDatabase(db);
  }
}

/** Prints one line per query: median and p99 against the target. */
export function printQueryBench(result: QueryBenchResult): void {
  const { database } = result;
  console.log(
    `queries on ${fmt(database.rows)} readings of ${database.devices} devices, through ${result.runtime}`,
  );
  console.log(
    `database: ${(database.bytes / 2 ** 20).toFixed(0)} MiB, ${database.built ? `built in ${(database.buildMs / 1000).toFixed(1)} s` : 'cached file reused'} (${database.file})`,
  );
  console.log(
    `${'query'.padEnd(44)} ${'tier'.padEnd(6)} ${'rows'.padStart(5)} ${'median'.padStart(9)} ${'p99'.padStart(9)} ${'target'.padStart(8)}  runs`,
  );
  for (const f of result.figures) {
    const verdict = f.targetMs === null ? '' : f.medianMs <= f.targetMs ? ' ok' : ' MISSED';
    console.log(
      `${f.name.padEnd(44)} ${f.tier.padEnd(6)} ${String(f.rows).padStart(5)} ${ms(f.medianMs).padStart(9)} ${ms(f.p99Ms).padStart(9)} ${(f.targetMs === null ? '' : `<= ${f.targetMs} ms`).padStart(8)}  ${fmt(f.reps)}${verdict}`,
    );
  }
  console.log(`total bench time: ${(result.durationMs / 1000).toFixed(1)} s`);
}

function measure(
  name: string,
  targetMs: number | null,
  reps: number,
  engine: QueryEngine,
  request: (i: number) => Record<string, unknown>,
): QueryFigure {
  const warmup = Math.min(200, reps);
  let rows = -1;
  let tier = '';
  const times: number[] = [];
  for (let i = -warmup; i < reps; i++) {
    const query = request(i + warmup);
    const before = performance.now();
    const result = engine.run(query);
    const after = performance.now();
    if (i >= 0) times.push(after - before);
    if (rows !== -1 && rows !== result.rows.length) {
      throw new Error(`${name}: ${result.rows.length} rows, earlier ${rows}`);
    }
    rows = result.rows.length;
    tier = result.tier;
  }
  return {
    name,
    targetMs,
    medianMs: median(times),
    p99Ms: quantile(times, 0.99),
    reps,
    rows,
    tier,
  };
}

/** Reuses the cached database when it is complete and of this generator, else builds it. */
function ensureDatabase(): { built: boolean; ms: number } {
  if (existsSync(FILE) && cachedIsCurrent()) return { built: false, ms: 0 };
  const started = performance.now();
  mkdirSync(dirname(FILE), { recursive: true });
  const temp = `${FILE}.building`;
  for (const file of [FILE, temp]) {
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
  }
  const db = openDatabase(temp);
  try {
    // A throw-away file: a crash mid-build leaves only `.building`, never a half-filled cache.
    db.pragma('synchronous = OFF');
    fill(db);
    db.exec('ANALYZE');
    db.exec('CREATE TABLE bench_info (key TEXT PRIMARY KEY, value) WITHOUT ROWID');
    db.prepare('INSERT INTO bench_info VALUES (?, ?)').run('params', params());
  } finally {
    closeDatabase(db);
  }
  renameSync(temp, FILE);
  return { built: true, ms: performance.now() - started };
}

function cachedIsCurrent(): boolean {
  let db: Database.Database | null = null;
  try {
    db = openDatabase(FILE);
    const stored = db.prepare("SELECT value FROM bench_info WHERE key = 'params'").pluck().get();
    return stored === params();
  } catch {
    return false;
  } finally {
    if (db !== null) closeDatabase(db);
  }
}

function params(): string {
  return JSON.stringify({ GENERATOR, DEVICES, INTERVAL_MS, ROWS, END, HOURLY_FROM });
}

/**
 * 100 devices every 10 s, device after device in key order so every insert appends to the b-tree,
 * in transactions of 500,000 rows; then hourly summaries for 30 days: rolled up from the raw
 * readings where they exist, generated before that (as if retention had pruned the raw rows).
 */
function fill(db: Database.Database): void {
  const insertDevice = db.prepare(
    'INSERT INTO devices (device_id, alias, model, has_emeter, first_seen, last_seen) VALUES (?, ?, ?, 1, ?, ?)',
  );
  const insertReading = db.prepare(
    'INSERT INTO readings (device, ts, power_w, voltage_v, current_a, total_wh, energy_wh) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const insertHour = db.prepare(
    'INSERT INTO hourly_summaries (device, hour_start, samples, avg_power_w, min_power_w, max_power_w, energy_wh) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  db.transaction(() => {
    for (let d = 0; d < DEVICES; d++) {
      const id = `8006${d.toString(16).toUpperCase().padStart(36, '0')}`;
      insertDevice.run(id, `plug ${d}`, 'HS110(EU)', START, END - INTERVAL_MS);
    }
  })();
  let pending = 0;
  db.exec('BEGIN');
  for (let device = 1; device <= DEVICES; device++) {
    let total = 0;
    for (let i = 0; i < PER_DEVICE; i++) {
      const ts = START + i * INTERVAL_MS;
      const power = powerAt(device, ts);
      const energy = (power * INTERVAL_MS) / HOUR_MS;
      total += energy;
      insertReading.run(
        device,
        ts,
        power,
        230 + (i % 7) * 0.3,
        power / 230,
        Math.round(total),
        energy,
      );
      if (++pending === ROWS_PER_TRANSACTION) {
        db.exec('COMMIT; BEGIN');
        pending = 0;
      }
    }
  }
  db.exec('COMMIT');
  db.transaction(() => {
    db.prepare(
      `INSERT INTO hourly_summaries
       SELECT device, ts - ts % ${HOUR_MS}, count(power_w), avg(power_w), min(power_w), max(power_w),
              sum(energy_wh)
       FROM readings GROUP BY device, ts / ${HOUR_MS}`,
    ).run();
    for (let device = 1; device <= DEVICES; device++) {
      for (let hour = HOURLY_FROM; hour < START - (START % HOUR_MS); hour += HOUR_MS) {
        const avg = powerAt(device, hour + HOUR_MS / 2);
        insertHour.run(device, hour, 360, avg, avg * 0.8, avg * 1.3, avg);
      }
    }
  })();
}

/** A plausible load: a daily cycle per device plus deterministic jitter, W. */
function powerAt(device: number, ts: number): number {
  const hourOfDay = (ts % DAY_MS) / HOUR_MS;
  const base = 20 + device * 3;
  const cycle = Math.max(0, Math.sin(((hourOfDay - 6) / 24) * 2 * Math.PI)) * base * 4;
  const jitter = ((Math.imul(ts / INTERVAL_MS, 2654435761) ^ (device * 40503)) >>> 0) % 1000;
  return Math.round((base + cycle + jitter / 100) * 10) / 10;
}

function ms(value: number): string {
  return `${value < 1 ? value.toFixed(3) : value.toFixed(2)} ms`;
}

function fmt(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

if (require.main === module) {
  try {
    printQueryBench(runQueryBench());
  } catch (error) {
    console.error(error);
    process.exitCode = 1;
  }
}
