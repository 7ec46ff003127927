import { statSync } from 'node:fs';

import Database from 'better-sqlite3';

import { errorMessage, KasaError } from '../errors';
import { migrate } from './schema';

/** Connection settings; every size is bounded so a long-running Node-RED keeps a flat footprint. */
export interface OpenOptions {
  /** Page cache per connection, KiB. Default 16384 (16 MiB). */
  cacheKiB?: number;
  /** Memory-mapped I/O window, bytes. Default 128 MiB. */
  mmapBytes?: number;
  /** How long a statement waits for another connection's lock, ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Size the -wal file is cut back to once it has been checkpointed, bytes. Default 64 MiB. */
  journalSizeLimitBytes?: number;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;
export const DEFAULT_JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Opens (creating if needed) a readings database tuned for time series: WAL, `synchronous=NORMAL`,
 * bounded cache and mmap, `temp_store=MEMORY`, a busy timeout and a journal size limit; then runs
 * pending migrations and lets SQLite refresh statistics it finds stale.
 *
 * @param file absolute path of the database file
 * @throws KasaError `DB_OPEN_FAILED` naming the path and the cause (missing directory, not a
 *   database, not writable, schema newer than this package).
 */
export function openDatabase(file: string, options: OpenOptions = {}): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(file);
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS}`);
    // Only possible before the first table exists: lets retention give deleted space back to the
    // file system in slices when asked (the `vacuum` option), at no cost until then.
    if (db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() === 0) {
      db.pragma('auto_vacuum = INCREMENTAL');
    }
    const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
    if (mode.toLowerCase() !== 'wal') {
      throw new Error(`the file does not support WAL journaling (journal_mode is ${mode})`);
    }
    db.pragma('synchronous = NORMAL');
    db.pragma(`cache_size = -${options.cacheKiB ?? 16384}`);
    db.pragma(`mmap_size = ${options.mmapBytes ?? 128 * 1024 * 1024}`);
    db.pragma('temp_store = MEMORY');
    db.pragma(
      `journal_size_limit = ${options.journalSizeLimitBytes ?? DEFAULT_JOURNAL_SIZE_LIMIT_BYTES}`,
    );
    migrate(db);
    // 0x10002: analyse only tables whose statistics are missing or stale, within a small budget.
    db.pragma('optimize = 0x10002');
    return db;
  } catch (error) {
    try {
      db?.close();
    } catch {
      // The open already failed; that error is the one worth reporting.
    }
    if (error instanceof KasaError) throw error;
    throw new KasaError(
      'DB_OPEN_FAILED',
      `cannot open database ${file}: ${errorMessage(error)}`,
      { path: file, cause: errorMessage(error), sqliteCode: sqliteCodeOf(error) },
      { cause: error },
    );
  }
}

/** Whether the file can give free pages back in slices (created with auto_vacuum=INCREMENTAL). */
export function vacuumsIncrementally(db: Database.Database): boolean {
  return db.pragma('auto_vacuum', { simple: true }) === 2;
}

/** Runs `PRAGMA optimize` and closes; failures of the optimisation never keep the file open. */
export function closeDatabase(db: Database.Database): void {
  try {
    if (db.open && !db.readonly) db.pragma('optimize');
  } finally {
    if (db.open) db.close();
  }
}

/** The SQLite result code name of a better-sqlite3 error (e.g. `SQLITE_BUSY`), or null. */
export function sqliteCodeOf(error: unknown): string | null {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    return typeof code === 'string' ? code : null;
  }
  return null;
}

/** Size of a file in bytes; 0 when it does not exist (a -wal file between checkpoints). */
export function fileBytes(file: string): number {
  return statSync(file, { throwIfNoEntry: false })?.size ?? 0;
}

/** Size of the database's -wal file in bytes (0 for an in-memory database). */
export function walBytes(db: Database.Database): number {
  return db.memory ? 0 : fileBytes(`${db.name}-wal`);
}
