import { resolve } from 'node:path';

import type Database from 'better-sqlite3';

import { errorMessage } from '../errors';
import { type Logger, silentLogger } from '../types';
import { closeDatabase, type OpenOptions, openDatabase } from './database';
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_FLUSH_INTERVAL_MS,
  type FlushInfo,
  ReadingWriter,
  type ReadingWriterOptions,
  type RecoveredInfo,
} from './writer';
import type { KasaError } from '../errors';

/** What one user of a database would like its writer to do; the writer follows the most eager. */
export interface LeaseOptions {
  /** Rows that trigger a flush. Default: the writer's (1000). */
  batchSize?: number;
  /** Longest wait of a queued row, ms. Default: the writer's (1000). */
  flushIntervalMs?: number;
}

interface WriterListeners {
  error: (error: KasaError) => void;
  recovered: (info: RecoveredInfo) => void;
  flush: (info: FlushInfo) => void;
}

/** Something that hands out leases on one database file, e.g. a kasa-sqlite-db config node. */
export interface DatabaseSource {
  /** Absolute path of the database file. */
  readonly path: string;
  /** @throws KasaError `DB_OPEN_FAILED` */
  acquire(options?: LeaseOptions): DatabaseLease;
}

/** One user's hold on a shared database: its connection and its one writer. */
export interface DatabaseLease {
  /** Absolute path of the database file. */
  readonly path: string;
  readonly db: Database.Database;
  readonly writer: ReadingWriter;
  /** Listens to the writer until this lease is released. */
  on<E extends keyof WriterListeners>(event: E, listener: WriterListeners[E]): void;
  /**
   * Flushes and gives the database back; the last release closes the writer (final flush),
   * runs `PRAGMA optimize` and closes the connection. Idempotent.
   *
   * @returns rows that could not be written before closing (0 unless the final flush failed).
   */
  release(): number;
}

interface Entry {
  path: string;
  db: Database.Database;
  writer: ReadingWriter;
  leases: Set<Lease>;
}

export interface DatabaseRegistryOptions {
  open?: OpenOptions;
  /** Options of every writer except the flush triggers, which come from the leases. */
  writer?: Omit<ReadingWriterOptions, 'batchSize' | 'flushIntervalMs' | 'logger'>;
  logger?: Logger;
}

/**
 * Opens each database file once, however many nodes use it: one better-sqlite3 connection and one
 * ReadingWriter per absolute path, reference-counted by leases.
 */
export class DatabaseRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: DatabaseRegistryOptions = {}) {}

  /**
   * Opens the database on first use (creating it and running migrations), or shares the open one.
   * Relative paths resolve against the process's working directory.
   *
   * @throws KasaError `DB_OPEN_FAILED` naming the path and cause.
   */
  acquire(file: string, options: LeaseOptions = {}, logger?: Logger): DatabaseLease {
    const path = resolve(file);
    let entry = this.entries.get(path);
    if (entry === undefined) {
      const db = openDatabase(path, this.options.open);
      const writer = new ReadingWriter(db, {
        ...this.options.writer,
        ...options,
        logger: logger ?? this.options.logger ?? silentLogger,
      });
      entry = { path, db, writer, leases: new Set() };
      this.entries.set(path, entry);
    }
    const lease = new Lease(this, entry, options);
    entry.leases.add(lease);
    this.configureWriter(entry);
    return lease;
  }

  /** Number of open databases. */
  get size(): number {
    return this.entries.size;
  }

  /** Absolute paths of the open databases. */
  paths(): string[] {
    return [...this.entries.keys()];
  }

  /** Number of leases held on a file (0 when it is not open). */
  users(file: string): number {
    return this.entries.get(resolve(file))?.leases.size ?? 0;
  }

  /** @internal called by Lease.release */
  releaseLease(entry: Entry, lease: Lease): number {
    if (!entry.leases.delete(lease)) return 0;
    if (entry.leases.size > 0) {
      this.configureWriter(entry);
      entry.writer.flush();
      return 0;
    }
    this.entries.delete(entry.path);
    const lost = entry.writer.close();
    try {
      closeDatabase(entry.db);
    } catch (error) {
      (this.options.logger ?? silentLogger).error(
        `closing ${entry.path} failed: ${errorMessage(error)}`,
      );
    }
    return lost;
  }

  private configureWriter(entry: Entry): void {
    let batchSize: number | undefined;
    let flushIntervalMs: number | undefined;
    for (const lease of entry.leases) {
      batchSize = minDefined(batchSize, lease.options.batchSize);
      flushIntervalMs = minDefined(flushIntervalMs, lease.options.flushIntervalMs);
    }
    entry.writer.configure({
      batchSize: batchSize ?? DEFAULT_BATCH_SIZE,
      flushIntervalMs: flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
    });
  }
}

class Lease implements DatabaseLease {
  private released = false;
  private readonly unsubscribers: (() => void)[] = [];

  constructor(
    private readonly registry: DatabaseRegistry,
    private readonly entry: Entry,
    readonly options: LeaseOptions,
  ) {}

  get path(): string {
    return this.entry.path;
  }

  get db(): Database.Database {
    return this.entry.db;
  }

  get writer(): ReadingWriter {
    return this.entry.writer;
  }

  on<E extends keyof WriterListeners>(event: E, listener: WriterListeners[E]): void {
    if (this.released) return;
    const writer = this.entry.writer as unknown as NodeJS.EventEmitter;
    writer.on(event, listener);
    this.unsubscribers.push(() => writer.off(event, listener));
  }

  release(): number {
    if (this.released) return 0;
    this.released = true;
    for (const unsubscribe of this.unsubscribers) unsubscribe();
    this.unsubscribers.length = 0;
    return this.registry.releaseLease(this.entry, this);
  }
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (b === undefined || !Number.isFinite(b) || b <= 0) return a;
  return a === undefined ? b : Math.min(a, b);
}

/** The registry every node of this package shares, so two nodes on one file share one connection. */
export const databases = new DatabaseRegistry();
