import { createHistogram, monitorEventLoopDelay, type RecordableHistogram } from 'node:perf_hooks';

import type { Totals } from './registry';

/** What a window needs of `perf_hooks.monitorEventLoopDelay()` (values in ns). */
export interface EventLoopHistogram {
  enable(): boolean;
  disable(): boolean;
  reset(): void;
  percentile(percentile: number): number;
  readonly max: number;
  readonly count?: number;
}

/** Makes the event-loop monitor of a window or of the registry; default: perf_hooks, 20 ms. */
export type EventLoopMonitorFactory = () => EventLoopHistogram;

export const systemEventLoopMonitor: EventLoopMonitorFactory = () =>
  monitorEventLoopDelay({ resolution: 20 });

/** Durations of one operation since the window opened or was last reset, ms. */
export interface OperationFigures {
  count: number;
  avg_ms: number;
  min_ms: number;
  max_ms: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
}

export interface EventLoopFigures {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

class Operation {
  /**
   * Quantiles come from Node's built-in HDR histogram (perf_hooks.createHistogram, three
   * significant digits, values in ns): recording is a native call of tens of ns, where a
   * prom-client Summary's t-digest costs about a microsecond and garbage per observation, too
   * much on the poll path. Count, sum, min and max are kept exactly beside it.
   */
  readonly histogram: RecordableHistogram = createHistogram();
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  observe(ms: number): void {
    this.count += 1;
    this.sum += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
    this.histogram.record(Math.max(1, Math.round(ms * 1e6)));
  }

  figures(): OperationFigures {
    // HDR buckets round up within three digits: keep the quantiles inside the exact min..max.
    const at = (percentile: number) =>
      Math.min(this.max, Math.max(this.min, this.histogram.percentile(percentile) / 1e6));
    return {
      count: this.count,
      avg_ms: round(this.sum / this.count),
      min_ms: round(this.min),
      max_ms: round(this.max),
      p50_ms: round(at(50)),
      p95_ms: round(at(95)),
      p99_ms: round(at(99)),
    };
  }
}

/**
 * Windowed figures of one kasa-perf-metrics node: per-operation durations and event-loop delay
 * since it opened or was last `reset()`. Every window has its own, so one node's reset does not
 * disturb another's; Prometheus series are not affected either.
 */
export class MetricsWindow {
  private readonly operations = new Map<string, Operation>();
  private readonly eventLoop: EventLoopHistogram;
  private closed = false;
  private cache: Pick<Totals, 'l1Hits' | 'l1Misses' | 'l2Hits' | 'l2Misses'> = {
    l1Hits: 0,
    l1Misses: 0,
    l2Hits: 0,
    l2Misses: 0,
  };
  /** When the window opened or was last reset (monotonic ms). */
  startedAt: number;

  constructor(
    private readonly now: () => number,
    eventLoop: EventLoopMonitorFactory,
  ) {
    this.startedAt = now();
    this.eventLoop = eventLoop();
    this.eventLoop.enable();
  }

  observe(name: string, ms: number): void {
    let operation = this.operations.get(name);
    if (operation === undefined) {
      operation = new Operation();
      this.operations.set(name, operation);
    }
    operation.observe(ms);
  }

  /** Remembers the cache lookups so far: the window's hit rates start from here. */
  cacheBaseline(totals: Totals): void {
    const { l1Hits, l1Misses, l2Hits, l2Misses } = totals;
    this.cache = { l1Hits, l1Misses, l2Hits, l2Misses };
  }

  /** Cache lookups since the baseline. */
  cacheSince(totals: Totals): Pick<Totals, 'l1Hits' | 'l1Misses' | 'l2Hits' | 'l2Misses'> {
    return {
      l1Hits: totals.l1Hits - this.cache.l1Hits,
      l1Misses: totals.l1Misses - this.cache.l1Misses,
      l2Hits: totals.l2Hits - this.cache.l2Hits,
      l2Misses: totals.l2Misses - this.cache.l2Misses,
    };
  }

  /** Count of `name` in this window. */
  count(name: string): number {
    return this.operations.get(name)?.count ?? 0;
  }

  /** Seconds since the window opened or was last reset. */
  elapsedS(): number {
    return (this.now() - this.startedAt) / 1000;
  }

  operationFigures(): Record<string, OperationFigures> {
    const result: Record<string, OperationFigures> = {};
    const sorted = [...this.operations].sort(([a], [b]) => a.localeCompare(b));
    for (const [name, operation] of sorted) result[name] = operation.figures();
    return result;
  }

  eventLoopFigures(): EventLoopFigures {
    const ns = (value: number) => (Number.isFinite(value) ? round(value / 1e6) : 0);
    return {
      p50_ms: ns(this.eventLoop.percentile(50)),
      p99_ms: ns(this.eventLoop.percentile(99)),
      max_ms: ns(this.eventLoop.max),
    };
  }

  reset(): void {
    this.operations.clear();
    this.eventLoop.reset();
    this.startedAt = this.now();
  }

  /** Stops the event-loop monitor. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.eventLoop.disable();
    this.operations.clear();
  }
}

/** Three decimals: enough for ms, short in a debug sidebar. */
export function round(value: number): number {
  return Number.isFinite(value) ? Math.round(value * 1000) / 1000 : 0;
}
