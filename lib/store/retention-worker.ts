// Entry of the retention worker thread: its own connection to the database file (WAL lets it
// write beside the main thread's connection), one run, then exit. See retention-runner.ts.
import { parentPort, workerData } from 'node:worker_threads';

import { errorMessage } from '../errors';
import { closeDatabase, openDatabase } from './database';
import { RetentionEngine } from './retention';
import type { RetentionWorkerData, RetentionWorkerMessage } from './retention-runner';

const post = (message: RetentionWorkerMessage): void => parentPort?.postMessage(message);
const { file, options, turn } = workerData as RetentionWorkerData;
const flag = new Int32Array(turn);

/**
 * Waits until the main thread grants a turn. Its event loop answers only between its own tasks,
 * so its writes never wait behind more than one of this thread's transactions; a main thread
 * busy for a whole second does not stop the run.
 */
function awaitTurn(): void {
  post({ type: 'turn' });
  Atomics.wait(flag, 0, 0, 1000);
  Atomics.store(flag, 0, 0);
}

try {
  // A small cache: the run reads each page about once, in key order.
  const db = openDatabase(file, { cacheKiB: 4096 });
  try {
    const now = options.now;
    const engine = new RetentionEngine(db, {
      ...options,
      beforeTransaction: awaitTurn,
      ...(now === undefined ? {} : { clock: { now: () => now } }),
    });
    const report = engine.run((progress) => post({ type: 'progress', progress }));
    post({ type: 'done', report });
  } finally {
    closeDatabase(db);
  }
} catch (error) {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : null;
  post({
    type: 'error',
    message: errorMessage(error),
    code: typeof code === 'string' ? code : null,
  });
}
