import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { KasaError } from '../errors';

import type { RetentionOptions, RetentionProgress, RetentionReport } from './retention';

/** Retention settings that cross to the worker: plain data, so a fixed `now` replaces a clock. */
export interface RetentionWorkerOptions extends Omit<RetentionOptions, 'clock'> {
  /** The run's "now", ms since the epoch. Default: the worker's system clock. */
  now?: number;
}

/** @internal what the worker receives */
export interface RetentionWorkerData {
  file: string;
  options: RetentionWorkerOptions;
  /** Int32 turn flag: the worker waits on it before each transaction, this thread sets it. */
  turn: SharedArrayBuffer;
}

/** @internal what the worker posts back */
export type RetentionWorkerMessage =
  | { type: 'turn' }
  | { type: 'progress'; progress: RetentionProgress }
  | { type: 'done'; report: RetentionReport }
  | { type: 'error'; message: string; code: string | null };

/** One retention run on a worker thread. */
export interface RetentionRun {
  /** The report; rejects when the run fails or is terminated. */
  readonly result: Promise<RetentionReport>;
  /**
   * Stops the worker at once. Safe at any point: each batch commits on its own, so the
   * database holds either all or none of a batch, and the next run carries on.
   */
  terminate(): Promise<void>;
}

/**
 * Runs {@link RetentionEngine} on a worker thread with its own connection to `file`, so the
 * caller's event loop stays free however many rows there are.
 *
 * @param file absolute path of an existing database file
 * @param onProgress called on this thread after the worker's first batch and then every ~250 ms
 */
export function runRetentionInWorker(
  file: string,
  options: RetentionWorkerOptions = {},
  onProgress?: (progress: RetentionProgress) => void,
): RetentionRun {
  const turn = new SharedArrayBuffer(4);
  const flag = new Int32Array(turn);
  const worker = startWorker({ file, options, turn });
  let terminated = false;
  const result = new Promise<RetentionReport>((resolve, reject) => {
    // The outcome is handed over once the thread has exited, its connection closed with it.
    let outcome: { report: RetentionReport } | { error: Error } | null = null;
    worker.on('message', (message: RetentionWorkerMessage) => {
      if (message.type === 'turn') {
        // This thread only gets here between two of its own synchronous tasks, so it is not
        // inside a write of its own: the worker may take the lock now. While this thread waits
        // for the lock, it cannot grant the next turn, so its wait lasts one worker transaction.
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
      } else if (message.type === 'progress') onProgress?.(message.progress);
      else if (message.type === 'done') outcome = { report: message.report };
      else outcome = { error: retentionFailed(message.message, message.code) };
    });
    worker.on('error', (error) => {
      outcome ??= { error: retentionFailed(error.message, null, error) };
    });
    worker.on('exit', (code) => {
      if (terminated) reject(new KasaError('RETENTION_STOPPED', 'the retention run was stopped'));
      else if (outcome === null)
        reject(retentionFailed(`the retention worker exited with code ${code}`, null));
      else if ('report' in outcome) resolve(outcome.report);
      else reject(outcome.error);
    });
  });
  return {
    result,
    async terminate() {
      terminated = true;
      // Whoever stops a run does not want its outcome: no unhandled rejection for it.
      result.catch(() => undefined);
      await worker.terminate();
    },
  };
}

/** A failed run, with the database's own error code (e.g. SQLITE_BUSY) kept in the details. */
function retentionFailed(message: string, code: unknown, cause?: unknown): KasaError {
  return new KasaError(
    'RETENTION_FAILED',
    message,
    typeof code === 'string' ? { cause_code: code } : {},
    cause === undefined ? undefined : { cause },
  );
}

let liveWorkers = 0;

/** Retention workers of this process that have not exited yet (for tests and metrics). */
export function activeRetentionWorkers(): number {
  return liveWorkers;
}

function startWorker(data: RetentionWorkerData): Worker {
  const worker = createWorker(data);
  liveWorkers += 1;
  worker.once('exit', () => {
    liveWorkers -= 1;
  });
  return worker;
}

function createWorker(data: RetentionWorkerData): Worker {
  // Compiled (dist/): the .js worker sits beside this module. From sources under tsx (tests,
  // benchmarks) the .ts worker needs tsx's loader inside the thread too.
  const extension = extname(__filename);
  const entry = join(__dirname, `retention-worker${extension}`);
  if (extension !== '.ts') return new Worker(entry, { workerData: data });
  const loader = require.resolve('tsx/cjs');
  return new Worker(`require(${JSON.stringify(loader)}); require(${JSON.stringify(entry)});`, {
    eval: true,
    workerData: data,
  });
}
