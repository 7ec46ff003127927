import type Database from 'better-sqlite3';

import { KasaError } from '../errors';

/** One schema step; `version` is what `PRAGMA user_version` holds once it has run. */
export interface Migration {
  version: number;
  description: string;
  up(db: Database.Database): void;
}

/**
 * The numbered schema steps, oldest first. Append new steps; never edit a released one, because
 * databases that already ran it will not run it again.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'devices, raw readings and hourly/daily summaries',
    up(db) {
      // The text device id lives only here; every other table carries the small integer key.
      db.exec(`
        CREATE TABLE devices (
          id INTEGER PRIMARY KEY,
          device_id TEXT UNIQUE NOT NULL,
          parent_id TEXT,
          child_id TEXT,
          host TEXT,
          port INTEGER,
          alias TEXT,
          model TEXT,
          hw_ver TEXT,
          sw_ver TEXT,
          mac TEXT,
          has_emeter INTEGER NOT NULL DEFAULT 1,
          first_seen INTEGER NOT NULL,
          last_seen INTEGER NOT NULL,
          is_monitored INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE readings (
          device INTEGER NOT NULL,
          ts INTEGER NOT NULL,
          power_w REAL,
          voltage_v REAL,
          current_a REAL,
          total_wh REAL,
          energy_wh REAL,
          PRIMARY KEY (device, ts)
        ) WITHOUT ROWID;
        CREATE TABLE hourly_summaries (
          device INTEGER NOT NULL,
          hour_start INTEGER NOT NULL,
          samples INTEGER NOT NULL DEFAULT 0,
          avg_power_w REAL,
          min_power_w REAL,
          max_power_w REAL,
          energy_wh REAL,
          PRIMARY KEY (device, hour_start)
        ) WITHOUT ROWID;
        CREATE TABLE daily_summaries (
          device INTEGER NOT NULL,
          day TEXT NOT NULL,
          day_start INTEGER NOT NULL,
          samples INTEGER NOT NULL DEFAULT 0,
          avg_power_w REAL,
          min_power_w REAL,
          max_power_w REAL,
          energy_wh REAL,
          PRIMARY KEY (device, day)
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 2,
    description: "daily_summaries.source: 'readings', or 'device' for days of an outage",
    up(db) {
      // Days a device filled from its own statistics after an outage (case-016) are told apart
      // from days rolled up from readings; existing rows all came from readings.
      db.exec(`ALTER TABLE daily_summaries ADD COLUMN source TEXT NOT NULL DEFAULT 'readings'`);
    },
  },
];

/** The schema version this package writes: the last migration's number. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Brings a database up to `SCHEMA_VERSION`, each pending step in its own IMMEDIATE transaction
 * together with its `user_version` bump, so a crash leaves either the old or the new version.
 *
 * @returns the versions that ran (empty when the database was already current).
 * @throws KasaError `DB_OPEN_FAILED` when the file has a newer schema than this package knows.
 */
export function migrate(
  db: Database.Database,
  migrations: readonly Migration[] = MIGRATIONS,
): number[] {
  const current = userVersion(db);
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  if (current > latest) {
    throw new KasaError(
      'DB_OPEN_FAILED',
      `the database has schema version ${current}, newer than this package's ${latest}`,
      { path: db.name },
    );
  }
  const ran: number[] = [];
  for (const step of migrations) {
    if (step.version <= current) continue;
    db.transaction(() => {
      step.up(db);
      db.pragma(`user_version = ${step.version}`);
    }).immediate();
    ran.push(step.version);
  }
  return ran;
}

/** The schema version recorded in the file (`PRAGMA user_version`). */
export function userVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}
