/**
 * What instrumented code sees of the metrics: a few recording calls and a way to be read when
 * metrics are collected. `noopRecorder` stands in when metrics are switched off, so callers never
 * test a flag on their hot path.
 */

/** Operations whose durations are recorded; queries are `query_<type>`. */
export type OperationName = 'poll' | 'flush' | 'retention' | `query_${string}`;

/** Interval bands of kasa-adaptive-interval. */
export type IntervalBand = 'fast' | 'base' | 'slow' | 'learning';

/**
 * Figures a source reports when read. Levels (gauges) are summed over every source; `*_total`
 * fields are the source's own running totals, turned into counter increments by the registry.
 */
export interface SourceFigures {
  devices_online?: number;
  devices_offline?: number;
  requests_in_flight?: number;
  requests_queued?: number;
  retries_total?: number;
  connections_opened_total?: number;
  writer_queue_depth?: number;
  database_bytes?: number;
  wal_bytes?: number;
  cache_entries?: number;
  cache_l1_hits_total?: number;
  cache_l1_misses_total?: number;
  cache_l2_hits_total?: number;
  cache_l2_misses_total?: number;
  cache_evictions_total?: number;
  interval_bands?: Partial<Record<IntervalBand, number>>;
}

/** Something measured: read whenever metrics are collected (a scrape or a snapshot). */
export interface MetricsSource {
  read(into: SourceFigures): void;
  /**
   * Starts listening to the target (events that record); called for the first source of a
   * target only, so a writer shared by two nodes is not counted twice. Returns the stop.
   */
  start?(): () => void;
}

export interface MetricsRecorder {
  /** False for the no-op recorder. */
  readonly enabled: boolean;
  /**
   * One settled device request.
   * @param device - the device's `host:port`
   * @param ms - from the request's start (queueing and retries included) to its end
   * @param errorCode - the error's code when it failed; undefined for success
   */
  poll(device: string, ms: number, errorCode?: string): void;
  /** One successful writer flush of `rows` rows taking `ms`. */
  flush(rows: number, ms: number): void;
  /** One query of `type` (history, latest, summary) taking `ms`. */
  query(type: string, ms: number): void;
  /** One finished retention run. */
  retention(ms: number, rolledUp: number, deleted: number): void;
  /**
   * Adds `source`, measuring `target`, until the returned function is called. Several sources of
   * one target (two nodes sharing a cache) are read once; totals carry on across a redeploy that
   * keeps the target.
   */
  addSource(target: object, source: MetricsSource): () => void;
  /** Drops the per-device series of `devices` (they left the configuration). */
  forgetDevices(devices: readonly string[]): void;
}

const nothing = (): void => undefined;

export const noopRecorder: MetricsRecorder = {
  enabled: false,
  poll: nothing,
  flush: nothing,
  query: nothing,
  retention: nothing,
  addSource: () => nothing,
  forgetDevices: nothing,
};
