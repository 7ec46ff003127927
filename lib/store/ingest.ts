import { describeRejected, toStoreInput } from '../readings/validate';
import type { ReadingWriter, WriterStats } from './writer';

/** What one message brought to the writer. */
export interface IngestResult {
  readings: number;
  devices: number;
  days: number;
  /** Items that failed validation; the valid ones were queued all the same. */
  rejected: number;
  /** Every item of the message, valid or not. */
  total: number;
  /** Up to three rejected items, with the reason of each (empty when none was rejected). */
  rejectedDetail: string;
}

/**
 * Validates one message's readings (`payload`), device rows and device-filled days, and queues
 * the valid ones on the writer: a bad item never costs the good ones their place.
 *
 * @throws KasaError from the writer (`WRITER_QUEUE_FULL`, `WRITER_CLOSED`): nothing of this
 *   message was queued after the failing call.
 */
export function ingest(
  writer: ReadingWriter,
  payload: unknown,
  devices: unknown,
  daily: unknown,
): IngestResult {
  const input = toStoreInput(payload, devices, daily);
  writer.enqueue(input.readings);
  writer.upsertDevices(input.devices);
  writer.addDeviceDays(input.daily);
  return {
    readings: input.readings.length,
    devices: input.devices.length,
    days: input.daily.length,
    rejected: input.rejected.length,
    total:
      input.readings.length + input.devices.length + input.daily.length + input.rejected.length,
    rejectedDetail: input.rejected.length > 0 ? describeRejected(input.rejected) : '',
  };
}

/** How a writer is doing, for a status line. */
export type WriterHealth =
  | { state: 'ok'; queued: number }
  | { state: 'queue-high'; queued: number; max: number }
  | { state: 'retrying' | 'write-failed'; queued: number };

/** Above this share of its capacity, a writer's queue is reported as high. */
const QUEUE_WARN_RATIO = 0.8;

export function writerHealth(stats: WriterStats): WriterHealth {
  const queued = stats.queueDepth;
  if (stats.failing) {
    return {
      state: stats.lastError?.details.transient === true ? 'retrying' : 'write-failed',
      queued,
    };
  }
  if (queued > stats.maxQueuedRows * QUEUE_WARN_RATIO) {
    return { state: 'queue-high', queued, max: stats.maxQueuedRows };
  }
  return { state: 'ok', queued };
}
