import type { TwoLevelCache } from '../cache/two-level-cache';
import type { AdaptiveIntervals } from '../polling/adaptive-interval';
import type { DevicePool, RequestEvent } from '../pool/device-pool';
import { fileBytes } from '../store/database';
import type { ReadingWriter, FlushInfo } from '../store/writer';
import type { MetricsRecorder } from './recorder';

/**
 * Connects a device pool to the recorder: every settled request is a poll (latency, failures
 * by code); devices online/offline, requests in flight and queued, retries and connections are
 * read when collected. The returned function disconnects; with `forget`, the pool's per-device
 * series go too (the pool is closing for good).
 */
export function instrumentPool(
  recorder: MetricsRecorder,
  pool: DevicePool,
): (forget: boolean) => void {
  const onRequest = (event: RequestEvent) => recorder.poll(event.key, event.latencyMs, event.code);
  const remove = recorder.addSource(pool, {
    start() {
      pool.on('request', onRequest);
      return () => pool.off('request', onRequest);
    },
    read(into) {
      let online = 0;
      let offline = 0;
      for (const health of pool.snapshot()) {
        if (health.online === true) online += 1;
        else if (health.online === false) offline += 1;
      }
      const stats = pool.stats();
      into.devices_online = online;
      into.devices_offline = offline;
      into.requests_in_flight = stats.inFlight;
      into.requests_queued = stats.queued;
      into.retries_total = stats.retries;
      into.connections_opened_total = stats.connectionsOpened;
    },
  });
  return (forget) => {
    if (forget) recorder.forgetDevices(pool.snapshot().map((health) => health.key));
    remove();
  };
}

/** Connects a batched writer: flushes (rows, duration), queue depth, database and WAL size. */
export function instrumentWriter(
  recorder: MetricsRecorder,
  writer: ReadingWriter,
  path: string,
): () => void {
  const onFlush = (info: FlushInfo) => recorder.flush(info.written, info.ms);
  return recorder.addSource(writer, {
    start() {
      writer.on('flush', onFlush);
      return () => writer.off('flush', onFlush);
    },
    read(into) {
      into.writer_queue_depth = writer.stats.queueDepth;
      into.database_bytes = fileBytes(path);
      into.wal_bytes = fileBytes(`${path}-wal`);
    },
  });
}

/** Reads a cache's entries and its hits, misses and evictions per level when collected. */
export function instrumentCache(recorder: MetricsRecorder, cache: TwoLevelCache): () => void {
  return recorder.addSource(cache, {
    read(into) {
      const stats = cache.stats();
      into.cache_entries = stats.entries;
      into.cache_l1_hits_total = stats.l1.hits;
      into.cache_l1_misses_total = stats.l1.misses;
      into.cache_l2_hits_total = stats.l2?.hits ?? 0;
      into.cache_l2_misses_total = stats.l2?.misses ?? 0;
      into.cache_evictions_total = stats.evictions;
    },
  });
}

/** Reads how many devices each interval band of `intervals` holds when collected. */
export function instrumentIntervals(
  recorder: MetricsRecorder,
  intervals: AdaptiveIntervals,
): () => void {
  return recorder.addSource(intervals, {
    read(into) {
      into.interval_bands = intervals.counts();
    },
  });
}
