import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';

import type { IntervalBand, MetricsRecorder, MetricsSource, SourceFigures } from './recorder';
import {
  MetricsWindow,
  round,
  systemEventLoopMonitor,
  type EventLoopHistogram,
  type EventLoopFigures,
  type EventLoopMonitorFactory,
  type OperationFigures,
} from './window';

export interface MemoryFigures {
  /** Resident set size, bytes. */
  rss: number;
  heapUsed: number;
  heapTotal: number;
}

export interface MetricsRegistryOptions {
  /** Default: process.memoryUsage. */
  memory?: () => MemoryFigures;
  /** Open handles (sockets, timers, files...); default process.getActiveResourcesInfo().length. */
  handles?: () => number;
  /** Monotonic ms for rates; default performance.now. */
  now?: () => number;
  /** Default: perf_hooks.monitorEventLoopDelay at 20 ms resolution. */
  eventLoop?: EventLoopMonitorFactory;
}

/** The msg.payload of kasa-perf-metrics. */
export interface MetricsSnapshot {
  /** Durations since the window opened or was reset, per operation (poll, flush, query_*, retention). */
  operations: Record<string, OperationFigures>;
  /** Running totals since the runtime started (Prometheus counters). */
  counters: {
    polls: number;
    poll_failures: number;
    poll_failures_by_code: Record<string, number>;
    retries: number;
    connections_opened: number;
    rows_written: number;
    flushes: number;
    queries: number;
    retention_runs: number;
    rows_rolled_up: number;
    rows_deleted: number;
  };
  /** Hit rates over the window (null before any lookup); entries and evictions now/total. */
  cache: {
    hit_rate: number | null;
    hits: number;
    misses: number;
    l1: { hits: number; misses: number; hit_rate: number | null };
    l2: { hits: number; misses: number; hit_rate: number | null };
    entries: number;
    evictions: number;
  };
  devices: { online: number; offline: number };
  pool: { requests_in_flight: number; requests_queued: number; polls_per_s: number };
  store: { writer_queue_depth: number; database_mb: number; wal_mb: number };
  intervals: Record<IntervalBand, number>;
  memory: { rss_mb: number; heap_used_mb: number; heap_total_mb: number };
  event_loop: EventLoopFigures;
  handles: number;
  /** Seconds the window covers. */
  window_s: number;
}

interface Attached {
  sources: Set<MetricsSource>;
  stop: (() => void) | null;
}

/** Running totals read from sources. */
export interface Totals {
  retries: number;
  connections: number;
  l1Hits: number;
  l1Misses: number;
  l2Hits: number;
  l2Misses: number;
  evictions: number;
}

const BANDS: readonly IntervalBand[] = ['fast', 'base', 'slow', 'learning'];
const MB = 1024 * 1024;
const POLL_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SUMMARY = { percentiles: [0.5, 0.9, 0.95, 0.99], maxAgeSeconds: 600, ageBuckets: 5 };

type PollChild = ReturnType<Histogram<'device'>['labels']>;

const systemMemory = (): MemoryFigures => process.memoryUsage();
const systemHandles = (): number => process.getActiveResourcesInfo().length;

/**
 * The metrics of one runtime: a private prom-client Registry (never the global default) with
 * every series of the package, the sources it reads at collection time, and the windows of the
 * kasa-perf-metrics nodes. Create it once per runtime: prom-client refuses a second metric of the
 * same name in one registry, and this class is what makes that impossible.
 *
 * Hot-path costs: a poll is one histogram observation (a pre-bound child per device) and two
 * number additions; counters reach prom-client at collection time. Levels (devices online, queue
 * depths, cache counters) are read from their sources only when collected.
 */
export class MetricsRegistry implements MetricsRecorder {
  readonly enabled = true;
  readonly registry = new Registry();
  private readonly memory: () => MemoryFigures;
  private readonly handles: () => number;
  private readonly now: () => number;
  private readonly eventLoopFactory: EventLoopMonitorFactory;
  private readonly attached = new Map<object, Attached>();
  /** Last totals read per target, so a target that outlives a redeploy is not counted twice. */
  private readonly lastTotals = new WeakMap<object, Totals>();
  private windows: MetricsWindow[] = [];
  private eventLoop: EventLoopHistogram | null = null;

  private readonly pollChildren = new Map<string, PollChild>();
  private pollCount = 0;
  private pollCountReported = 0;
  private readonly failureCounts = new Map<string, number>();
  private readonly failureReported = new Map<string, number>();
  private rowsWritten = 0;
  private flushCount = 0;
  private queryCount = 0;
  private retentionRuns = 0;
  private rowsRolledUp = 0;
  private rowsDeleted = 0;
  /** Running totals read from sources (retries, connections, cache lookups). */
  private readonly cacheTotals: Totals = zeroTotals();
  /** What the prom-client counters were last told of the totals kept here. */
  private reported = { rowsWritten: 0, rowsRolledUp: 0, rowsDeleted: 0 };

  private readonly pollDuration = new Histogram({
    name: 'kasa_poll_duration_seconds',
    help: 'Device request latency, from the request to its answer (queueing and retries included)',
    labelNames: ['device'],
    buckets: POLL_BUCKETS_S,
    registers: [this.registry],
  });
  private readonly polls = this.counter('kasa_polls_total', 'Device requests settled');
  private readonly pollFailures = new Counter({
    name: 'kasa_poll_failures_total',
    help: 'Device requests that failed, by error code',
    labelNames: ['code'],
    registers: [this.registry],
  });
  private readonly devices = new Gauge({
    name: 'kasa_devices',
    help: 'Devices known to the device pools, by state (online, offline)',
    labelNames: ['state'],
    registers: [this.registry],
  });
  private readonly inFlight = this.gauge(
    'kasa_pool_requests_in_flight',
    'Device requests on the wire',
  );
  private readonly queued = this.gauge(
    'kasa_pool_requests_queued',
    'Device requests waiting for their device or a slot',
  );
  private readonly retries = this.counter('kasa_pool_retries_total', 'Device request retries');
  private readonly connections = this.counter(
    'kasa_pool_connections_opened_total',
    'TCP connections opened to devices',
  );
  private readonly rowsWrittenCounter = this.counter(
    'kasa_store_rows_written_total',
    'Readings written to SQLite',
  );
  private readonly flushDuration = new Summary({
    name: 'kasa_store_flush_duration_seconds',
    help: 'Duration of a batch flush (one transaction), last 10 minutes',
    ...SUMMARY,
    registers: [this.registry],
  });
  private readonly writerQueue = this.gauge(
    'kasa_store_writer_queue_depth',
    'Readings waiting in the batched writers',
  );
  private readonly queryDuration = new Summary({
    name: 'kasa_store_query_duration_seconds',
    help: 'Duration of a query, by type (history, latest, summary), last 10 minutes',
    labelNames: ['type'],
    ...SUMMARY,
    registers: [this.registry],
  });
  private readonly databaseBytes = this.gauge(
    'kasa_store_database_bytes',
    'Size of the SQLite database files',
  );
  private readonly walBytes = this.gauge('kasa_store_wal_bytes', 'Size of their -wal files');
  private readonly cacheHits = new Counter({
    name: 'kasa_cache_hits_total',
    help: 'Cache lookups answered, by level (l1 memory, l2 Redis)',
    labelNames: ['level'],
    registers: [this.registry],
  });
  private readonly cacheMisses = new Counter({
    name: 'kasa_cache_misses_total',
    help: 'Cache lookups not answered, by level (l1 memory, l2 Redis)',
    labelNames: ['level'],
    registers: [this.registry],
  });
  private readonly cacheEvictions = this.counter(
    'kasa_cache_evictions_total',
    'Entries pushed out of memory by the size limit',
  );
  private readonly cacheEntries = this.gauge('kasa_cache_entries', 'Live entries in memory');
  private readonly intervalDevices = new Gauge({
    name: 'kasa_adaptive_interval_devices',
    help: 'Devices per interval band of kasa-adaptive-interval (fast, base, slow, learning)',
    labelNames: ['band'],
    registers: [this.registry],
  });
  private readonly retentionDuration = new Summary({
    name: 'kasa_retention_run_duration_seconds',
    help: 'Duration of a retention run, last 10 minutes',
    ...SUMMARY,
    registers: [this.registry],
  });
  private readonly rolledUpCounter = this.counter(
    'kasa_retention_rows_rolled_up_total',
    'Rows rolled up into hourly and daily summaries',
  );
  private readonly deletedCounter = this.counter(
    'kasa_retention_rows_deleted_total',
    'Rows deleted by retention',
  );
  private readonly residentBytes = this.gauge(
    'kasa_process_resident_memory_bytes',
    'Resident memory of the Node-RED process',
  );
  private readonly heapUsedBytes = this.gauge(
    'kasa_process_heap_used_bytes',
    'V8 heap in use in the Node-RED process',
  );
  private readonly openHandles = this.gauge(
    'kasa_process_open_handles',
    'Active handles and requests of the process (sockets, timers, files)',
  );
  private readonly lagP50 = this.gauge(
    'kasa_process_event_loop_lag_p50_seconds',
    'Event-loop delay, median since the previous scrape',
  );
  private readonly lagP99 = this.gauge(
    'kasa_process_event_loop_lag_p99_seconds',
    'Event-loop delay, 99th percentile since the previous scrape',
  );
  private readonly lagMax = this.gauge(
    'kasa_process_event_loop_lag_max_seconds',
    'Event-loop delay, maximum since the previous scrape',
  );

  constructor(options: MetricsRegistryOptions = {}) {
    this.memory = options.memory ?? systemMemory;
    this.handles = options.handles ?? systemHandles;
    this.now = options.now ?? (() => performance.now());
    this.eventLoopFactory = options.eventLoop ?? systemEventLoopMonitor;
    for (const band of BANDS) this.intervalDevices.set({ band }, 0);
    for (const state of ['online', 'offline']) this.devices.set({ state }, 0);
    for (const level of ['l1', 'l2']) {
      this.cacheHits.inc({ level }, 0);
      this.cacheMisses.inc({ level }, 0);
    }
  }

  /** Content-Type of `prometheus()`'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  poll(device: string, ms: number, errorCode?: string): void {
    let child = this.pollChildren.get(device);
    if (child === undefined) {
      child = this.pollDuration.labels(device);
      this.pollChildren.set(device, child);
    }
    child.observe(ms / 1000);
    this.pollCount += 1;
    if (errorCode !== undefined) {
      this.failureCounts.set(errorCode, (this.failureCounts.get(errorCode) ?? 0) + 1);
    }
    for (const window of this.windows) window.observe('poll', ms);
  }

  flush(rows: number, ms: number): void {
    this.rowsWritten += rows;
    this.flushCount += 1;
    this.flushDuration.observe(ms / 1000);
    for (const window of this.windows) window.observe('flush', ms);
  }

  query(type: string, ms: number): void {
    this.queryCount += 1;
    this.queryDuration.observe({ type }, ms / 1000);
    for (const window of this.windows) window.observe(`query_${type}`, ms);
  }

  retention(ms: number, rolledUp: number, deleted: number): void {
    this.retentionRuns += 1;
    this.rowsRolledUp += rolledUp;
    this.rowsDeleted += deleted;
    this.retentionDuration.observe(ms / 1000);
    for (const window of this.windows) window.observe('retention', ms);
  }

  addSource(target: object, source: MetricsSource): () => void {
    let entry = this.attached.get(target);
    if (entry === undefined) {
      entry = { sources: new Set(), stop: source.start?.() ?? null };
      this.attached.set(target, entry);
    }
    entry.sources.add(source);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const current = this.attached.get(target);
      if (current === undefined) return;
      // The last word of a target that goes, so its final totals are not lost.
      if (current.sources.size === 1) this.readTotals(target, source);
      current.sources.delete(source);
      if (current.sources.size > 0) return;
      this.attached.delete(target);
      current.stop?.();
    };
  }

  forgetDevices(devices: readonly string[]): void {
    for (const device of devices) {
      if (!this.pollChildren.delete(device)) continue;
      this.pollDuration.remove(device);
    }
  }

  /** Devices with a latency series (for tests and the status). */
  get deviceSeries(): number {
    return this.pollChildren.size;
  }

  /** Sources attached now, counted once per target. */
  get targets(): number {
    return this.attached.size;
  }

  /**
   * Opens a window of a kasa-perf-metrics node; the process event-loop monitor runs while at
   * least one is open. Close it with `closeWindow`.
   */
  openWindow(): MetricsWindow {
    const window = new MetricsWindow(this.now, this.eventLoopFactory);
    this.collect();
    window.cacheBaseline(this.cacheTotals);
    this.windows = [...this.windows, window];
    if (this.eventLoop === null) {
      this.eventLoop = this.eventLoopFactory();
      this.eventLoop.enable();
    }
    return window;
  }

  closeWindow(window: MetricsWindow): void {
    window.close();
    this.windows = this.windows.filter((open) => open !== window);
    if (this.windows.length === 0 && this.eventLoop !== null) {
      this.eventLoop.disable();
      this.eventLoop = null;
    }
  }

  get openWindows(): number {
    return this.windows.length;
  }

  /** Every series in the Prometheus text exposition format (see `contentType`). */
  async prometheus(): Promise<string> {
    this.collect();
    const lag = this.eventLoop;
    if (lag !== null) {
      const seconds = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
      this.lagP50.set(seconds(lag.percentile(50)));
      this.lagP99.set(seconds(lag.percentile(99)));
      this.lagMax.set(seconds(lag.max));
      lag.reset();
    }
    return this.registry.metrics();
  }

  /** The figures of kasa-perf-metrics' message for `window`. */
  snapshot(window: MetricsWindow): MetricsSnapshot {
    const levels = this.collect();
    const memory = this.memory();
    const windowS = window.elapsedS();
    const byCode: Record<string, number> = {};
    let failures = 0;
    for (const [code, count] of [...this.failureCounts].sort(([a], [b]) => a.localeCompare(b))) {
      byCode[code] = count;
      failures += count;
    }
    const cache = window.cacheSince(this.cacheTotals);
    const rate = (hits: number, misses: number) =>
      hits + misses === 0 ? null : round(hits / (hits + misses));
    return {
      operations: window.operationFigures(),
      counters: {
        polls: this.pollCount,
        poll_failures: failures,
        poll_failures_by_code: byCode,
        retries: this.cacheTotals.retries,
        connections_opened: this.cacheTotals.connections,
        rows_written: this.rowsWritten,
        flushes: this.flushCount,
        queries: this.queryCount,
        retention_runs: this.retentionRuns,
        rows_rolled_up: this.rowsRolledUp,
        rows_deleted: this.rowsDeleted,
      },
      cache: {
        hit_rate: rate(cache.l1Hits + cache.l2Hits, cache.l1Misses - cache.l2Hits),
        hits: cache.l1Hits + cache.l2Hits,
        misses: cache.l1Misses - cache.l2Hits,
        l1: {
          hits: cache.l1Hits,
          misses: cache.l1Misses,
          hit_rate: rate(cache.l1Hits, cache.l1Misses),
        },
        l2: {
          hits: cache.l2Hits,
          misses: cache.l2Misses,
          hit_rate: rate(cache.l2Hits, cache.l2Misses),
        },
        entries: levels.cache_entries ?? 0,
        evictions: this.cacheTotals.evictions,
      },
      devices: { online: levels.devices_online ?? 0, offline: levels.devices_offline ?? 0 },
      pool: {
        requests_in_flight: levels.requests_in_flight ?? 0,
        requests_queued: levels.requests_queued ?? 0,
        polls_per_s: windowS > 0 ? round(window.count('poll') / windowS) : 0,
      },
      store: {
        writer_queue_depth: levels.writer_queue_depth ?? 0,
        database_mb: round((levels.database_bytes ?? 0) / MB),
        wal_mb: round((levels.wal_bytes ?? 0) / MB),
      },
      intervals: {
        fast: levels.interval_bands?.fast ?? 0,
        base: levels.interval_bands?.base ?? 0,
        slow: levels.interval_bands?.slow ?? 0,
        learning: levels.interval_bands?.learning ?? 0,
      },
      memory: {
        rss_mb: round(memory.rss / MB),
        heap_used_mb: round(memory.heapUsed / MB),
        heap_total_mb: round(memory.heapTotal / MB),
      },
      event_loop: window.eventLoopFigures(),
      handles: this.handles(),
      window_s: round(windowS),
    };
  }

  /** Resets the window's figures (msg.reset); running totals and Prometheus series stay. */
  resetWindow(window: MetricsWindow): void {
    window.reset();
    window.cacheBaseline(this.cacheTotals);
  }

  /** Reads every source and brings the prom-client series up to date; returns the levels. */
  private collect(): SourceFigures {
    const levels: Required<Omit<SourceFigures, 'interval_bands'>> & {
      interval_bands: Record<IntervalBand, number>;
    } = {
      devices_online: 0,
      devices_offline: 0,
      requests_in_flight: 0,
      requests_queued: 0,
      retries_total: 0,
      connections_opened_total: 0,
      writer_queue_depth: 0,
      database_bytes: 0,
      wal_bytes: 0,
      cache_entries: 0,
      cache_l1_hits_total: 0,
      cache_l1_misses_total: 0,
      cache_l2_hits_total: 0,
      cache_l2_misses_total: 0,
      cache_evictions_total: 0,
      interval_bands: { fast: 0, base: 0, slow: 0, learning: 0 },
    };
    for (const [target, entry] of this.attached) {
      const figures = this.readTotals(target, first(entry.sources));
      levels.devices_online += figures.devices_online ?? 0;
      levels.devices_offline += figures.devices_offline ?? 0;
      levels.requests_in_flight += figures.requests_in_flight ?? 0;
      levels.requests_queued += figures.requests_queued ?? 0;
      levels.writer_queue_depth += figures.writer_queue_depth ?? 0;
      levels.database_bytes += figures.database_bytes ?? 0;
      levels.wal_bytes += figures.wal_bytes ?? 0;
      levels.cache_entries += figures.cache_entries ?? 0;
      for (const band of BANDS) levels.interval_bands[band] += figures.interval_bands?.[band] ?? 0;
    }
    this.devices.set({ state: 'online' }, levels.devices_online);
    this.devices.set({ state: 'offline' }, levels.devices_offline);
    this.inFlight.set(levels.requests_in_flight);
    this.queued.set(levels.requests_queued);
    this.writerQueue.set(levels.writer_queue_depth);
    this.databaseBytes.set(levels.database_bytes);
    this.walBytes.set(levels.wal_bytes);
    this.cacheEntries.set(levels.cache_entries);
    for (const band of BANDS) this.intervalDevices.set({ band }, levels.interval_bands[band]);

    if (this.pollCount > this.pollCountReported)
      this.polls.inc(this.pollCount - this.pollCountReported);
    this.pollCountReported = this.pollCount;
    for (const [code, count] of this.failureCounts) {
      const reported = this.failureReported.get(code) ?? 0;
      if (count > reported) this.pollFailures.inc({ code }, count - reported);
      this.failureReported.set(code, count);
    }
    const reported = this.reported;
    this.rowsWrittenCounter.inc(this.rowsWritten - reported.rowsWritten);
    this.rolledUpCounter.inc(this.rowsRolledUp - reported.rowsRolledUp);
    this.deletedCounter.inc(this.rowsDeleted - reported.rowsDeleted);
    this.reported = {
      rowsWritten: this.rowsWritten,
      rowsRolledUp: this.rowsRolledUp,
      rowsDeleted: this.rowsDeleted,
    };

    const memory = this.memory();
    this.residentBytes.set(memory.rss);
    this.heapUsedBytes.set(memory.heapUsed);
    this.openHandles.set(this.handles());
    return levels;
  }

  /** Reads one source; its running totals become counter increments. */
  private readTotals(target: object, source: MetricsSource | undefined): SourceFigures {
    const figures: SourceFigures = {};
    if (source === undefined) return figures;
    source.read(figures);
    const last = this.lastTotals.get(target) ?? zeroTotals();
    const now: Totals = {
      retries: figures.retries_total ?? last.retries,
      connections: figures.connections_opened_total ?? last.connections,
      l1Hits: figures.cache_l1_hits_total ?? last.l1Hits,
      l1Misses: figures.cache_l1_misses_total ?? last.l1Misses,
      l2Hits: figures.cache_l2_hits_total ?? last.l2Hits,
      l2Misses: figures.cache_l2_misses_total ?? last.l2Misses,
      evictions: figures.cache_evictions_total ?? last.evictions,
    };
    // A total that went down belongs to a new object under an old key: count it from zero.
    const delta = (key: keyof Totals) => (now[key] >= last[key] ? now[key] - last[key] : now[key]);
    const d: Totals = {
      retries: delta('retries'),
      connections: delta('connections'),
      l1Hits: delta('l1Hits'),
      l1Misses: delta('l1Misses'),
      l2Hits: delta('l2Hits'),
      l2Misses: delta('l2Misses'),
      evictions: delta('evictions'),
    };
    this.lastTotals.set(target, now);
    if (d.retries > 0) this.retries.inc(d.retries);
    if (d.connections > 0) this.connections.inc(d.connections);
    if (d.l1Hits > 0) this.cacheHits.inc({ level: 'l1' }, d.l1Hits);
    if (d.l1Misses > 0) this.cacheMisses.inc({ level: 'l1' }, d.l1Misses);
    if (d.l2Hits > 0) this.cacheHits.inc({ level: 'l2' }, d.l2Hits);
    if (d.l2Misses > 0) this.cacheMisses.inc({ level: 'l2' }, d.l2Misses);
    if (d.evictions > 0) this.cacheEvictions.inc(d.evictions);
    for (const key of Object.keys(d) as (keyof Totals)[]) this.cacheTotals[key] += d[key];
    return figures;
  }

  private counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, registers: [this.registry] });
  }
}

function zeroTotals(): Totals {
  return {
    retries: 0,
    connections: 0,
    l1Hits: 0,
    l1Misses: 0,
    l2Hits: 0,
    l2Misses: 0,
    evictions: 0,
  };
}

function first<T>(set: Set<T>): T | undefined {
  for (const value of set) return value;
  return undefined;
}
