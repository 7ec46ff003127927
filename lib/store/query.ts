import { performance } from 'node:perf_hooks';

import type Database from 'better-sqlite3';

import { KasaError } from '../errors';
import { type Clock, systemClock } from '../types';
import {
  compareIds,
  DEFAULT_QUERY_LIMITS,
  encodeCursor,
  MAX_TIME,
  MIN_TIME,
  type Order,
  type ParsedQuery,
  parseQuery,
  type QueryLimits,
  type QueryRequest,
  type QueryType,
  type Tier,
} from './query-request';

export * from './query-request';

/** One raw reading as queries return it: the chosen fields besides device_id and ts (ms, UTC). */
export interface ReadingRow {
  device_id: string;
  ts: number;
  power_w?: number | null;
  voltage_v?: number | null;
  current_a?: number | null;
  total_wh?: number | null;
  energy_wh?: number | null;
}

/**
 * One summary bucket: an hour (raw and hourly tiers) or a day (daily tier) of one device.
 * `samples` counts readings with a power value; the power figures are null when it is 0, never NaN.
 */
export interface SummaryRow {
  device_id: string;
  /** Start of the bucket, ms since the epoch (UTC). */
  bucket_start: number;
  samples?: number;
  avg_power_w?: number | null;
  min_power_w?: number | null;
  max_power_w?: number | null;
  /** Sum of the readings' energy deltas, Wh; null when no reading of the bucket had one. */
  energy_wh?: number | null;
  /**
   * Where the figures come from: 'readings', or 'device' for a day of an outage that the
   * device filled from its own statistics (energy only; no samples, no power figures).
   */
  source?: 'readings' | 'device';
}

export interface QueryResult<R = ReadingRow | SummaryRow> {
  type: QueryType;
  /** The table that was read; `auto` resolved. */
  tier: Tier;
  rows: R[];
  /** Pass as `cursor` with the same query for the next page; null when there is no more. */
  next_cursor: string | null;
}

/** A point as FlowFuse Dashboard 2's ui-chart takes it (X key `ts`, series key `device_id`). */
export interface ChartPoint {
  device_id: string;
  ts: number;
  [field: string]: string | number | null | undefined;
}

export interface QueryEngineOptions extends Partial<QueryLimits> {
  /** The "now" of `tier: 'auto'`. Default: the system clock. */
  clock?: Clock;
}

/** Hour buckets of the raw tier, ms. */
export const HOUR_MS = 3600 * 1000;

const READING_COLUMNS = 'ts, power_w, voltage_v, current_a, total_wh, energy_wh';
const SUMMARY_COLUMNS = 'samples, avg_power_w, min_power_w, max_power_w, energy_wh';
/**
 * Statements return plain arrays (better-sqlite3's raw mode; building row objects natively costs
 * more than the read itself), in these column orders: the time first, as the merge key.
 */
const READING_INDEX = columnIndex(READING_COLUMNS);
const SUMMARY_INDEX = columnIndex(`bucket_start, ${SUMMARY_COLUMNS}, source`);

/**
 * Every statement the engine runs; fixed text, values bound as parameters. Each one reaches rows
 * through a primary key or the devices' unique index, never by scanning a table.
 */
export const QUERY_SQL = {
  // Named devices arrive as one bound JSON array: one statement per query, not one per device.
  namedDevices: `SELECT d.id, d.device_id FROM json_each(?) j CROSS JOIN devices d
    WHERE d.device_id = j.value`,
  allDevices: 'SELECT id, device_id FROM devices ORDER BY device_id LIMIT ?',
  historyAsc: `SELECT ${READING_COLUMNS} FROM readings WHERE device = ? AND ts >= ? AND ts < ? ORDER BY ts LIMIT ?`,
  historyDesc: `SELECT ${READING_COLUMNS} FROM readings WHERE device = ? AND ts >= ? AND ts < ? ORDER BY ts DESC LIMIT ?`,
  // CROSS JOIN pins devices as the outer loop: one seek into readings per device, in device_id
  // order, so LIMIT stops the walk early and no plan can turn into a GROUP BY over readings.
  latestAll: `SELECT r.${READING_COLUMNS.replaceAll(', ', ', r.')}, d.device_id
    FROM devices d CROSS JOIN readings r
    WHERE d.device_id > ? AND r.device = d.id
      AND r.ts = (SELECT ts FROM readings WHERE device = d.id AND ts >= ? AND ts < ? ORDER BY ts DESC LIMIT 1)
    ORDER BY d.device_id LIMIT ?`,
  latestNamed: `SELECT r.${READING_COLUMNS.replaceAll(', ', ', r.')}, d.device_id
    FROM json_each(?) j CROSS JOIN devices d CROSS JOIN readings r
    WHERE j.value > ? AND d.device_id = j.value AND r.device = d.id
      AND r.ts = (SELECT ts FROM readings WHERE device = d.id AND ts >= ? AND ts < ? ORDER BY ts DESC LIMIT 1)
    LIMIT ?`,
  rawFirst: 'SELECT ts FROM readings WHERE device = ? AND ts >= ? AND ts < ? ORDER BY ts LIMIT 1',
  rawLast:
    'SELECT ts FROM readings WHERE device = ? AND ts >= ? AND ts < ? ORDER BY ts DESC LIMIT 1',
  rawBucket: `SELECT ? AS bucket_start, count(power_w) AS samples, avg(power_w) AS avg_power_w,
      min(power_w) AS min_power_w, max(power_w) AS max_power_w, sum(energy_wh) AS energy_wh,
      'readings' AS source
    FROM readings WHERE device = ? AND ts >= ? AND ts < ?`,
  hourlyAsc: `SELECT hour_start AS bucket_start, ${SUMMARY_COLUMNS}, 'readings' AS source
    FROM hourly_summaries
    WHERE device = ? AND hour_start >= ? AND hour_start < ? ORDER BY hour_start LIMIT ?`,
  hourlyDesc: `SELECT hour_start AS bucket_start, ${SUMMARY_COLUMNS}, 'readings' AS source
    FROM hourly_summaries
    WHERE device = ? AND hour_start >= ? AND hour_start < ? ORDER BY hour_start DESC LIMIT ?`,
  // Ordered by the key column `day`, which runs with day_start, so no sort step is needed.
  dailyAsc: `SELECT day_start AS bucket_start, ${SUMMARY_COLUMNS}, source FROM daily_summaries
    WHERE device = ? AND day_start >= ? AND day_start < ? ORDER BY day LIMIT ?`,
  dailyDesc: `SELECT day_start AS bucket_start, ${SUMMARY_COLUMNS}, source FROM daily_summaries
    WHERE device = ? AND day_start >= ? AND day_start < ? ORDER BY day DESC LIMIT ?`,
} as const;

const RAW_STATEMENTS = [
  'historyAsc',
  'historyDesc',
  'latestAll',
  'latestNamed',
  'rawBucket',
  'hourlyAsc',
  'hourlyDesc',
  'dailyAsc',
  'dailyDesc',
] as const;
/** Where latestAll and latestNamed put the device id: after the reading's columns. */
const LATEST_DEVICE = READING_INDEX.size;

type Statements = { -readonly [K in keyof typeof QUERY_SQL]: Database.Statement };
type Row = (number | string | null)[];
interface Device {
  id: number;
  device_id: string;
}
/** One row waiting in the merge, at its time (or bucket start) `pos`. */
interface Item {
  pos: number;
  device_id: string;
  row: Row;
}
/** The rows of one device in reply order, produced on demand. */
interface Source {
  head: Item | undefined;
  advance(): void;
}

/**
 * Answers history, latest and summary queries on a readings database, synchronously, on the
 * connection it is given (the store's own). Every statement runs to completion with `.all()` or
 * `.get()` inside one short read transaction per query, so no read snapshot outlives a call and
 * checkpoints are never held back between messages.
 */
export class QueryEngine {
  private readonly limits: QueryLimits;
  private readonly clock: Clock;
  private readonly sql: Statements;
  private readonly inSnapshot: (work: () => QueryResult) => QueryResult;

  constructor(db: Database.Database, options: QueryEngineOptions = {}) {
    const { clock, ...limits } = options;
    this.limits = { ...DEFAULT_QUERY_LIMITS, ...withoutUndefined(limits) };
    this.clock = clock ?? systemClock;
    const sql: Partial<Statements> = {};
    for (const [name, text] of Object.entries(QUERY_SQL)) {
      sql[name as keyof Statements] = db.prepare(text);
    }
    this.sql = sql as Statements;
    for (const name of ['rawFirst', 'rawLast'] as const) this.sql[name].pluck();
    for (const name of RAW_STATEMENTS) this.sql[name].raw();
    // One snapshot per query: pages of several devices are merged from the same state of the file.
    this.inSnapshot = db.transaction((work: () => QueryResult) => work());
  }

  /**
   * Checks and runs a query as a message carries it (see {@link QueryRequest}).
   *
   * @throws KasaError `BAD_QUERY` naming the problem; the engine stays usable.
   */
  run(request: unknown): QueryResult {
    const query = parseQuery(request, this.limits);
    return this.inSnapshot(() => {
      switch (query.type) {
        case 'history':
          return this.history(query);
        case 'latest':
          return this.latest(query);
        case 'summary':
          return this.summary(query);
      }
    });
  }

  /** Raw readings in time order; see {@link QueryRequest} for the options. */
  readings(request: Omit<QueryRequest, 'type'>): QueryResult<ReadingRow> {
    return this.run({ ...request, type: 'history' }) as QueryResult<ReadingRow>;
  }

  /**
   * The newest reading of each device (every device when none is named), by device_id; devices
   * without readings in the range are left out. Meant also for warming a cache at start-up.
   */
  latestReadings(request: Omit<QueryRequest, 'type'> = {}): QueryResult<ReadingRow> {
    return this.run({ ...request, type: 'latest' }) as QueryResult<ReadingRow>;
  }

  /** Hourly or daily buckets; see {@link QueryRequest} for the tier and range rules. */
  buckets(request: Omit<QueryRequest, 'type'>): QueryResult<SummaryRow> {
    return this.run({ ...request, type: 'summary' }) as QueryResult<SummaryRow>;
  }

  /**
   * The tier `auto` reads for a range starting at `from`: raw when it starts within the raw
   * horizon, hourly within the hourly horizon, daily otherwise (and when it has no start).
   */
  autoTier(from: number, rawHorizonMs: number, hourlyHorizonMs: number): Tier {
    const now = this.clock.now();
    if (from >= now - rawHorizonMs) return 'raw';
    if (from >= now - hourlyHorizonMs) return 'hourly';
    return 'daily';
  }

  private history(query: ParsedQuery): QueryResult {
    const devices = this.devicesOf(query);
    const pageSize = pageSizeFor(query.limit, devices.length);
    const statement = query.order === 'asc' ? this.sql.historyAsc : this.sql.historyDesc;
    const sources = devices.map((device) => {
      const [lo, hi] = bounds(query, device.device_id);
      return pagedSource(statement, device, lo, hi, query.order, pageSize);
    });
    return this.reply(query, 'raw', merge(sources, query.order, query.limit + 1));
  }

  private latest(query: ParsedQuery): QueryResult {
    const after = query.cursor?.device_id ?? '';
    const { from, to, limit } = query;
    const rows = (
      query.devices === null
        ? this.sql.latestAll.all(after, from, to, limit + 1)
        : this.sql.latestNamed.all(JSON.stringify(query.devices), after, from, to, limit + 1)
    ) as Row[];
    const items = rows.map((row) => ({
      pos: row[0] as number,
      device_id: row[LATEST_DEVICE] as string,
      row,
    }));
    // json_each walks the sorted array in order; the sort only guards that assumption (O(n)).
    items.sort((a, b) => compareIds(a.device_id, b.device_id));
    return this.reply(query, 'raw', items);
  }

  private summary(query: ParsedQuery): QueryResult {
    const tier =
      query.cursor?.tier ??
      (query.tier === 'auto'
        ? this.autoTier(query.from, query.rawHorizonMs, query.hourlyHorizonMs)
        : query.tier);
    const devices = this.devicesOf(query);
    const pageSize = pageSizeFor(query.limit, devices.length);
    const desc = query.order === 'desc';
    const sources = devices.map((device): Source => {
      const [lo, hi] = bounds(query, device.device_id);
      if (tier === 'raw') return rawBucketSource(this.sql, device, lo, hi, query.order);
      const statement =
        tier === 'hourly'
          ? desc
            ? this.sql.hourlyDesc
            : this.sql.hourlyAsc
          : desc
            ? this.sql.dailyDesc
            : this.sql.dailyAsc;
      return pagedSource(statement, device, lo, hi, query.order, pageSize);
    });
    return this.reply(query, tier, merge(sources, query.order, query.limit + 1));
  }

  /** The requested devices that exist, sorted by device_id; unknown ids are simply absent. */
  private devicesOf(query: ParsedQuery): Device[] {
    if (query.devices === null) {
      const max = this.limits.maxDevices;
      const all = this.sql.allDevices.all(max + 1) as Device[];
      if (all.length > max) {
        throw new KasaError(
          'BAD_QUERY',
          `the database holds more than ${max} devices; name the ones wanted in device_ids`,
          { field: 'device_ids' },
        );
      }
      return all;
    }
    return this.sql.namedDevices.all(JSON.stringify(query.devices)) as Device[];
  }

  /** Keeps `limit` items, projects the asked fields and makes the cursor from the last one kept. */
  private reply(query: ParsedQuery, tier: Tier, items: Item[]): QueryResult {
    const more = items.length > query.limit;
    if (more) items.length = query.limit;
    const summary = query.type === 'summary';
    const time = summary ? 'bucket_start' : 'ts';
    const index = summary ? SUMMARY_INDEX : READING_INDEX;
    const fields = query.fields.map((name) => [name, index.get(name) ?? -1] as const);
    const rows = items.map(({ device_id, pos, row }) => {
      const out: Record<string, string | number | null> = { device_id, [time]: pos };
      for (const [name, at] of fields) out[name] = row[at] ?? null;
      return out;
    });
    const last = items.at(-1);
    return {
      type: query.type,
      tier,
      rows: rows as unknown as ReadingRow[] | SummaryRow[],
      next_cursor:
        more && last !== undefined
          ? encodeCursor(query, { pos: last.pos, device_id: last.device_id, tier })
          : null,
    };
  }
}

/**
 * Shapes a result for FlowFuse Dashboard 2's ui-chart: one point per row with the time under
 * `ts` (a bucket's start for summaries), to be sent with `msg.action = 'replace'`.
 */
export function toChartPoints(result: QueryResult): ChartPoint[] {
  if (result.type !== 'summary') return result.rows as ChartPoint[];
  return (result.rows as SummaryRow[]).map(({ bucket_start, ...rest }) => ({
    ...rest,
    ts: bucket_start,
  }));
}

/**
 * The range `[lo, hi)` of times (or bucket starts) left for one device: the query's range,
 * narrowed past the cursor. Replies are ordered by time, then device_id (both descending for
 * `desc`), so a device that comes later at the same time still has its row at the cursor's time.
 */
function bounds(query: ParsedQuery, deviceId: string): [number, number] {
  let lo = query.from;
  let hi = query.to;
  const cursor = query.cursor;
  if (cursor !== null) {
    const byId = compareIds(deviceId, cursor.device_id);
    if (query.order === 'asc') lo = Math.max(lo, byId > 0 ? cursor.pos : cursor.pos + 1);
    else hi = Math.min(hi, byId < 0 ? cursor.pos + 1 : cursor.pos);
  }
  return [lo, hi];
}

/** Rows to fetch per device and round trip: all of them for one device, a fair share otherwise. */
function pageSizeFor(limit: number, devices: number): number {
  if (devices <= 1) return limit + 1;
  return Math.min(limit + 1, Math.max(32, Math.ceil((2 * (limit + 1)) / devices)));
}

/** Rows of one device from a keyset-paged statement `(device, lo, hi, limit)`. */
function pagedSource(
  statement: Database.Statement,
  device: Device,
  lo: number,
  hi: number,
  order: Order,
  pageSize: number,
): Source {
  let page: Row[] = [];
  let index = 0;
  let exhausted = false;
  const source: Source = {
    head: undefined,
    advance() {
      if (index >= page.length) {
        if (exhausted || lo >= hi) {
          source.head = undefined;
          return;
        }
        page = statement.all(device.id, lo, hi, pageSize) as Row[];
        index = 0;
        exhausted = page.length < pageSize;
        const last = page.at(-1);
        if (last !== undefined) {
          if (order === 'asc') lo = (last[0] as number) + 1;
          else hi = last[0] as number;
        }
        if (page.length === 0) {
          source.head = undefined;
          return;
        }
      }
      const row = page[index++] as Row;
      source.head = { pos: row[0] as number, device_id: device.device_id, row };
    },
  };
  source.advance();
  return source;
}

/**
 * Hour buckets of one device computed from raw readings: a seek finds the next reading, one
 * aggregate covers its hour, so empty hours cost nothing and produce no bucket. Buckets whose
 * start lies in `[lo, hi)` are produced, each over its whole hour.
 */
function rawBucketSource(
  sql: Statements,
  device: Device,
  lo: number,
  hi: number,
  order: Order,
): Source {
  let tsLo = ceilHour(lo);
  let tsHi = ceilHour(hi);
  const source: Source = {
    head: undefined,
    advance() {
      const seek = order === 'asc' ? sql.rawFirst : sql.rawLast;
      const ts = tsLo < tsHi ? (seek.get(device.id, tsLo, tsHi) as number | undefined) : undefined;
      if (ts === undefined) {
        source.head = undefined;
        return;
      }
      const start = ts - mod(ts, HOUR_MS);
      const row = sql.rawBucket.get(start, device.id, start, start + HOUR_MS) as Row;
      if (order === 'asc') tsLo = start + HOUR_MS;
      else tsHi = start;
      source.head = { pos: start, device_id: device.device_id, row };
    },
  };
  source.advance();
  return source;
}

/** Merges per-device sources into reply order (time, then device_id), up to `count` items. */
function merge(sources: Source[], order: Order, count: number): Item[] {
  const sign = order === 'asc' ? 1 : -1;
  const before = (a: Item, b: Item): boolean =>
    a.pos !== b.pos ? sign * (a.pos - b.pos) < 0 : sign * compareIds(a.device_id, b.device_id) < 0;
  const heap = sources.filter((source) => source.head !== undefined);
  const headOf = (i: number): Item => (heap[i] as Source).head as Item;
  const swap = (i: number, j: number): void => {
    const held = heap[i] as Source;
    heap[i] = heap[j] as Source;
    heap[j] = held;
  };
  const sink = (start: number): void => {
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) return;
      const right = left + 1;
      const child = right < heap.length && before(headOf(right), headOf(left)) ? right : left;
      if (!before(headOf(child), headOf(i))) return;
      swap(i, child);
      i = child;
    }
  };
  for (let i = Math.floor(heap.length / 2) - 1; i >= 0; i--) sink(i);
  const items: Item[] = [];
  while (heap.length > 0 && items.length < count) {
    const top = heap[0] as Source;
    items.push(top.head as Item);
    top.advance();
    if (top.head === undefined) {
      const last = heap.pop() as Source;
      if (heap.length > 0) heap[0] = last;
    }
    sink(0);
  }
  return items;
}

function columnIndex(columns: string): Map<string, number> {
  return new Map(columns.split(', ').map((name, index) => [name, index]));
}

function ceilHour(ms: number): number {
  if (ms <= MIN_TIME || ms >= MAX_TIME) return ms;
  const rest = mod(ms, HOUR_MS);
  return rest === 0 ? ms : ms - rest + HOUR_MS;
}

function mod(value: number, by: number): number {
  return ((value % by) + by) % by;
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, item]) => item !== undefined),
  ) as Partial<T>;
}

/** A query's answer as a message carries it. */
export interface QueryAnswer {
  /** The rows, or chart points when asked for a chart. */
  payload: (ReadingRow | SummaryRow)[] | ChartPoint[];
  query: { type: QueryType; tier: Tier; count: number; next_cursor: string | null };
  /** How long the query took, ms. */
  ms: number;
}

/**
 * Runs `request` (a message's payload) and shapes the answer: rows, or with `chart` the points
 * a FlowFuse Dashboard 2 ui-chart takes.
 *
 * @throws KasaError `BAD_QUERY` naming what is wrong with the request.
 */
export function answerQuery(engine: QueryEngine, request: unknown, chart: boolean): QueryAnswer {
  const started = performance.now();
  const result = engine.run(request);
  const { type, tier, rows, next_cursor } = result;
  return {
    payload: chart ? toChartPoints(result) : rows,
    query: { type, tier, count: rows.length, next_cursor },
    ms: performance.now() - started,
  };
}
