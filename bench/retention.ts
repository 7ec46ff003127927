// Retention benchmark at 6.9 M raw readings (100 devices x 8 days at 10 s): one run that rolls
// the 7 oldest days up into hourly summaries and deletes them, on the worker thread the
// kasa-retention node uses, while this process plays Node-RED: its event-loop lag is measured
// (perf_hooks.monitorEventLoopDelay) and a main-thread connection keeps writing a poll cycle of
// readings every 200 ms, so waits on the database lock show up as lag too. The -wal file is
// sampled every 5 ms for its peak size. The source database is built once into
// bench/results/retention-7m-v2.db (git-ignored) and copied per run. `npx tsx bench/retention.ts`;
// RETENTION_BUDGET_MS=n tries another transaction budget than the engine's default.
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

import { closeDatabase, openDatabase } from '../lib/store/database';
import { runRetentionInWorker } from '../lib/store/retention-runner';

const DEVICES = 100;
const DAYS = 8;
const INTERVAL_MS = 10_000;
const PER_DEVICE = (DAYS * 86_400_000) / INTERVAL_MS;
const ROWS = DEVICES * PER_DEVICE;
/** Newest reading + 10 s: "now" of the run, so the 7 oldest days are past a 1-day raw horizon. */
const END = Date.parse('2025-01-09T00:00:00Z');
const START = END - PER_DEVICE * INTERVAL_MS;
// Bump when the data or the file format changes (2: files are created with auto_vacuum=INCREMENTAL).
const GENERATOR = 2;
const FILE = join(__dirname, 'results', `retention-7m-v${GENERATOR}.db`);

export const RETENTION_TARGETS = { totalMs: 10_000, blockMs: 50, walBytes: 16 * 2 ** 20 };

export interface RetentionBenchResult {
  rows: number;
  devices: number;
  dbBytes: number;
  built: boolean;
  buildMs: number;
  rolledUp: number;
  deleted: number;
  /** Wall time of the run seen from this process, ms. */
  totalMs: number;
  /** Longest event-loop delay of this process during the run, ms. */
  maxBlockMs: number;
  p99BlockMs: number;
  /** Longest main-thread write of a poll cycle (lock waits included), ms. */
  maxWriteMs: number;
  peakWalBytes: number;
  walBytesAfter: number;
}

/** Builds or reuses the 6.9 M row database, copies it, and measures one retention run. */
export async function runRetentionBench(): Promise<RetentionBenchResult> {
  const build = ensureDatabase();
  const dir = join(tmpdir(), `kasa-retention-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'bench.db');
  try {
    copyFileSync(FILE, file);
    const db = openDatabase(file);
    const insert = db.prepare(
      'INSERT INTO readings (device, ts, power_w, energy_wh) VALUES (?, ?, 60, 0.1)',
    );
    const writeCycle = db.transaction((ts: number) => {
      for (let d = 1; d <= DEVICES; d++) insert.run(d, ts);
    });
    let ts = END;
    let maxWriteMs = 0;
    const writer = setInterval(() => {
      const at = performance.now();
      writeCycle((ts += INTERVAL_MS));
      maxWriteMs = Math.max(maxWriteMs, performance.now() - at);
    }, 200);
    let peakWalBytes = 0;
    const sampler = setInterval(() => {
      try {
        peakWalBytes = Math.max(peakWalBytes, statSync(`${file}-wal`).size);
      } catch {
        // No WAL file at this instant.
      }
    }, 5);
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    const started = performance.now();
    try {
      const report = await runRetentionInWorker(file, {
        now: END,
        rawDays: 1,
        timeZone: 'UTC',
        ...(process.env.RETENTION_BUDGET_MS === undefined
          ? {}
          : { budgetMs: Number(process.env.RETENTION_BUDGET_MS) }),
      }).result;
      const totalMs = performance.now() - started;
      lag.disable();
      return {
        rows: ROWS,
        devices: DEVICES,
        dbBytes: statSync(FILE).size,
        built: build.built,
        buildMs: build.ms,
        rolledUp: report.rolled_up,
        deleted: report.deleted,
        totalMs,
        maxBlockMs: lag.max / 1e6,
        p99BlockMs: lag.percentile(99) / 1e6,
        maxWriteMs,
        peakWalBytes,
        walBytesAfter: report.wal_bytes,
      };
    } finally {
      lag.disable();
      clearInterval(writer);
      clearInterval(sampler);
      closeDatabase(db);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Prints the three figures of the issue against their targets. */
export function printRetentionBench(r: RetentionBenchResult): void {
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');
  console.log(
    `retention of ${r.rows.toLocaleString('en-US')} readings (${r.devices} devices x ${DAYS} days at 10 s), 7 days rolled up and pruned on the worker thread`,
  );
  console.log(
    `database: ${mib(r.dbBytes)}, ${r.built ? `built in ${(r.buildMs / 1000).toFixed(1)} s` : 'cached file reused'} (${FILE})`,
  );
  console.log(
    `rows rolled up ${r.rolledUp.toLocaleString('en-US')}, deleted ${r.deleted.toLocaleString('en-US')}`,
  );
  const t = RETENTION_TARGETS;
  console.log(
    `total time         ${(r.totalMs / 1000).toFixed(2)} s   target <= ${t.totalMs / 1000} s  ${verdict(r.totalMs <= t.totalMs)}`,
  );
  console.log(
    `longest loop block ${r.maxBlockMs.toFixed(1)} ms  (p99 ${r.p99BlockMs.toFixed(1)} ms)   target <= ${t.blockMs} ms  ${verdict(r.maxBlockMs <= t.blockMs)}`,
  );
  console.log(`  longest main-thread write of a poll cycle: ${r.maxWriteMs.toFixed(1)} ms`);
  console.log(
    `peak WAL           ${mib(r.peakWalBytes)}   target <= ${mib(t.walBytes)}  ${verdict(r.peakWalBytes <= t.walBytes)}; after the run ${mib(r.walBytesAfter)}`,
  );
}

/** The cached source database: built in physical (device, ts) order when missing. */
function ensureDatabase(): { built: boolean; ms: number } {
  if (existsSync(FILE)) return { built: false, ms: 0 };
  const started = performance.now();
  mkdirSync(dirname(FILE), { recursive: true });
  const partial = `${FILE}.partial`;
  rmSync(partial, { force: true });
  const db = openDatabase(partial);
  const insert = db.prepare(
    'INSERT INTO readings (device, ts, power_w, voltage_v, current_a, total_wh, energy_wh) VALUES (?, ?, ?, 230, ?, ?, ?)',
  );
  const device = db.prepare(
    'INSERT INTO devices (id, device_id, first_seen, last_seen) VALUES (?, ?, ?, ?)',
  );
  for (let d = 1; d <= DEVICES; d++) {
    db.transaction(() => {
      device.run(d, `BENCH${String(d).padStart(35, '0')}`, START, END);
      let total = 0;
      for (let i = 0; i < PER_DEVICE; i++) {
        const power = 20 + ((d * 7 + i) % 120);
        const energy = (power * INTERVAL_MS) / 3_600_000;
        total += energy;
        insert.run(d, START + i * INTERVAL_MS, power, power / 230, total, energy);
      }
    })();
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
  closeDatabase(db);
  rmSync(`${partial}-wal`, { force: true });
  rmSync(`${partial}-shm`, { force: true });
  renameSync(partial, FILE);
  return { built: true, ms: performance.now() - started };
}

if (require.main === module) {
  runRetentionBench().then(printRetentionBench, (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
