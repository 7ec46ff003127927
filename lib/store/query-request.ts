import { createHash } from 'node:crypto';

import { describeValue, KasaError } from '../errors';

export type QueryType = 'history' | 'latest' | 'summary';
/** The table a query reads: raw readings, hourly_summaries or daily_summaries. */
export type Tier = 'raw' | 'hourly' | 'daily';
export type Order = 'asc' | 'desc';

/** Columns of raw readings a history or latest query can return, besides device_id and ts. */
export const READING_FIELDS = [
  'power_w',
  'voltage_v',
  'current_a',
  'total_wh',
  'energy_wh',
] as const;
/** Columns of a summary bucket, besides device_id and bucket_start. */
export const SUMMARY_FIELDS = [
  'samples',
  'avg_power_w',
  'min_power_w',
  'max_power_w',
  'energy_wh',
  'source',
] as const;
export type ReadingField = (typeof READING_FIELDS)[number];
export type SummaryField = (typeof SUMMARY_FIELDS)[number];

/** A time as a query accepts it: ms since the epoch, a string of digits, an ISO 8601 string or a Date. */
export type TimeInput = number | string | Date;

/**
 * A query as `msg.payload` carries it. Every property but `type` is optional; unknown properties
 * are refused so a misspelt one never silently widens a query.
 */
export interface QueryRequest {
  type: QueryType;
  /** One device; combined with `device_ids` when both are given. */
  device_id?: string;
  /**
   * Several devices: an array or a comma-separated string. Neither this nor `device_id` given:
   * every device; an empty array: no device, so no rows.
   */
  device_ids?: readonly string[] | string;
  /** Start of the range, inclusive. Default: unbounded. */
  from?: TimeInput | null;
  /** End of the range, exclusive. Default: unbounded. */
  to?: TimeInput | null;
  /** summary only: the table to read. Default `auto`. */
  tier?: Tier | 'auto';
  /** history and summary: by time ascending (default) or descending ("last N"). */
  order?: Order;
  /** Rows per reply. Default 1000, at most 10000 (see {@link QueryLimits}). */
  limit?: number | string;
  /** `next_cursor` of the previous reply of the same query. */
  cursor?: string | null;
  /** Columns to return besides the device id and time: an array or a comma-separated string. */
  fields?: readonly string[] | string;
  /** summary `auto`: how far back raw readings are kept, days. Default 7. */
  raw_horizon_days?: number | string;
  /** summary `auto`: how far back hourly summaries are kept, days. Default 30. */
  hourly_horizon_days?: number | string;
}

/** Bounds on what one query may ask for. */
export interface QueryLimits {
  /** Rows per reply when `limit` is not given. Default 1000. */
  defaultLimit: number;
  /** Largest `limit` accepted; a larger one is refused, not clamped. Default 10000. */
  maxLimit: number;
  /** Most devices one history or summary query may cover. Default 1000. */
  maxDevices: number;
  /** Default raw horizon of `tier: 'auto'`, ms. Default 7 days. */
  rawHorizonMs: number;
  /** Default hourly horizon of `tier: 'auto'`, ms. Default 30 days. */
  hourlyHorizonMs: number;
}

export const DAY_MS = 24 * 3600 * 1000;
export const DEFAULT_QUERY_LIMITS: QueryLimits = {
  defaultLimit: 1000,
  maxLimit: 10_000,
  maxDevices: 1000,
  rawHorizonMs: 7 * DAY_MS,
  hourlyHorizonMs: 30 * DAY_MS,
};

/** Stand-ins for an open end of a range; every stored time lies strictly between them. */
export const MIN_TIME = Number.MIN_SAFE_INTEGER;
export const MAX_TIME = Number.MAX_SAFE_INTEGER;

/** Where the previous page stopped: the last row's time (or bucket start) and device. */
export interface CursorPosition {
  pos: number;
  device_id: string;
  /** The tier the first page resolved `auto` to, so later pages read the same table. */
  tier: Tier;
}

/** A checked query, ready to run. */
export interface ParsedQuery {
  type: QueryType;
  /** Sorted and without repeats; null: every device. */
  devices: string[] | null;
  from: number;
  to: number;
  tier: Tier | 'auto';
  order: Order;
  limit: number;
  fields: string[];
  cursor: CursorPosition | null;
  rawHorizonMs: number;
  hourlyHorizonMs: number;
  /** Fingerprint of what a cursor must not change between pages. */
  shape: string;
}

const KEYS = new Set<string>([
  'type',
  'device_id',
  'device_ids',
  'from',
  'to',
  'tier',
  'order',
  'limit',
  'cursor',
  'fields',
  'raw_horizon_days',
  'hourly_horizon_days',
]);
const TYPES: readonly QueryType[] = ['history', 'latest', 'summary'];
const TIERS: readonly (Tier | 'auto')[] = ['raw', 'hourly', 'daily', 'auto'];

/**
 * Checks a query from a message. Nothing of it ever becomes SQL text: fields are matched against
 * fixed column lists and values are bound as parameters.
 *
 * @throws KasaError `BAD_QUERY` naming the property and the problem.
 */
export function parseQuery(
  value: unknown,
  limits: QueryLimits = DEFAULT_QUERY_LIMITS,
): ParsedQuery {
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    value instanceof Date
  ) {
    throw badQuery('payload', `a query must be an object, got ${describeValue(value)}`);
  }
  const raw = value as Record<string, unknown>;
  for (const [key, item] of Object.entries(raw)) {
    if (item !== undefined && !KEYS.has(key)) {
      throw badQuery(key, `unknown query property "${key}"; known: ${[...KEYS].join(', ')}`);
    }
  }
  const type = raw.type;
  if (typeof type !== 'string' || !(TYPES as readonly string[]).includes(type)) {
    throw badQuery(
      'type',
      type === undefined
        ? `type is missing; use ${TYPES.join(', ')}`
        : `unknown query type ${describeValue(type)}; use ${TYPES.join(', ')}`,
    );
  }
  const queryType = type as QueryType;
  const from = parseTime('from', raw.from, MIN_TIME);
  const to = parseTime('to', raw.to, MAX_TIME);
  if (from > to) throw badQuery('from', `from (${from}) is after to (${to})`);
  const query: ParsedQuery = {
    type: queryType,
    devices: parseDevices(raw.device_id, raw.device_ids, limits.maxDevices),
    from,
    to,
    tier: parseTier(queryType, raw.tier),
    order: parseOrder(queryType, raw.order),
    limit: parseLimit(raw.limit, limits),
    fields: parseFields(queryType, raw.fields),
    cursor: null,
    rawHorizonMs: parseDays('raw_horizon_days', raw.raw_horizon_days, limits.rawHorizonMs),
    hourlyHorizonMs: parseDays(
      'hourly_horizon_days',
      raw.hourly_horizon_days,
      limits.hourlyHorizonMs,
    ),
    shape: '',
  };
  query.shape = shapeOf(query);
  query.cursor = parseCursor(raw.cursor, query.shape);
  return query;
}

/** The opaque `next_cursor` for a reply whose last row is at `position`. */
export function encodeCursor(query: ParsedQuery, position: CursorPosition): string {
  const body = { s: query.shape, t: position.tier, p: position.pos, d: position.device_id };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

function parseCursor(value: unknown, shape: string): CursorPosition | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') {
    throw badQuery(
      'cursor',
      `cursor must be the string of next_cursor, got ${describeValue(value)}`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    body = null;
  }
  const { s, t, p, d } = (typeof body === 'object' && body !== null ? body : {}) as Record<
    string,
    unknown
  >;
  if (
    typeof s !== 'string' ||
    typeof d !== 'string' ||
    typeof p !== 'number' ||
    !Number.isSafeInteger(p) ||
    !(TIERS as readonly unknown[]).includes(t) ||
    t === 'auto'
  ) {
    throw badQuery('cursor', 'cursor is not one this node returned (use next_cursor as it is)');
  }
  if (s !== shape) {
    throw badQuery(
      'cursor',
      'cursor belongs to another query: type, devices, from, to, tier and order must stay the same between pages',
    );
  }
  return { pos: p, device_id: d, tier: t as Tier };
}

function shapeOf(query: ParsedQuery): string {
  const key = [query.type, query.devices, query.from, query.to, query.tier, query.order];
  return createHash('sha256').update(JSON.stringify(key)).digest('base64url').slice(0, 16);
}

function parseTime(name: string, value: unknown, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  let ms: number;
  if (typeof value === 'number') ms = value;
  else if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'string') {
    ms = /^-?\d+$/.test(value.trim()) ? Number(value) : Date.parse(value);
  } else {
    throw badQuery(
      name,
      `${name} must be ms since the epoch or an ISO time, got ${describeValue(value)}`,
    );
  }
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_TIME) {
    throw badQuery(name, `${name} is not a valid time: ${describeValue(value)}`);
  }
  return Math.round(ms);
}

function parseDevices(one: unknown, many: unknown, maxDevices: number): string[] | null {
  if ((one === undefined || one === null) && (many === undefined || many === null || many === '')) {
    return null;
  }
  const ids = new Set<string>();
  const add = (name: string, id: unknown): void => {
    if (typeof id !== 'string' || id.trim() === '') {
      throw badQuery(name, `${name} must hold non-empty strings, got ${describeValue(id)}`);
    }
    ids.add(id.trim());
  };
  if (one !== undefined && one !== null) add('device_id', one);
  if (typeof many === 'string') for (const id of many.split(',')) add('device_ids', id);
  else if (Array.isArray(many)) for (const id of many as unknown[]) add('device_ids', id);
  else if (many !== undefined && many !== null) {
    throw badQuery(
      'device_ids',
      `device_ids must be an array of device ids, got ${describeValue(many)}`,
    );
  }
  if (ids.size > maxDevices) {
    throw badQuery(
      'device_ids',
      `${ids.size} devices asked for; one query covers at most ${maxDevices}`,
    );
  }
  return [...ids].sort(compareIds);
}

function parseTier(type: QueryType, value: unknown): Tier | 'auto' {
  if (value === undefined || value === null || value === '')
    return type === 'summary' ? 'auto' : 'raw';
  if (!(TIERS as readonly unknown[]).includes(value)) {
    throw badQuery('tier', `unknown tier ${describeValue(value)}; use ${TIERS.join(', ')}`);
  }
  if (type !== 'summary' && value !== 'raw') {
    throw badQuery(
      'tier',
      `${type} reads raw readings; use type "summary" for hourly or daily data`,
    );
  }
  return value as Tier | 'auto';
}

function parseOrder(type: QueryType, value: unknown): Order {
  if (value === undefined || value === null || value === '') return 'asc';
  if (value !== 'asc' && value !== 'desc') {
    throw badQuery('order', `order must be "asc" or "desc", got ${describeValue(value)}`);
  }
  if (type === 'latest' && value !== 'asc') {
    throw badQuery(
      'order',
      'latest returns one row per device, by device_id; order does not apply',
    );
  }
  return value;
}

function parseLimit(value: unknown, limits: QueryLimits): number {
  if (value === undefined || value === null || value === '') return limits.defaultLimit;
  const limit = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) {
    throw badQuery('limit', `limit must be a whole number from 1, got ${describeValue(value)}`);
  }
  if (limit > limits.maxLimit) {
    throw badQuery(
      'limit',
      `limit ${limit} is over the maximum of ${limits.maxLimit}; fetch further pages with next_cursor`,
    );
  }
  return limit;
}

function parseFields(type: QueryType, value: unknown): string[] {
  const known: readonly string[] = type === 'summary' ? SUMMARY_FIELDS : READING_FIELDS;
  if (value === undefined || value === null || value === '') return [...known];
  let names: unknown[];
  if (typeof value === 'string') names = value.split(',').map((name) => name.trim());
  else if (Array.isArray(value)) names = value as unknown[];
  else
    throw badQuery(
      'fields',
      `fields must be an array of column names, got ${describeValue(value)}`,
    );
  if (names.length === 0) return [...known];
  const fields: string[] = [];
  for (const name of names) {
    if (typeof name !== 'string' || !known.includes(name)) {
      throw badQuery(
        'fields',
        `unknown field ${describeValue(name)} for ${type}; known fields: ${known.join(', ')}`,
      );
    }
    if (!fields.includes(name)) fields.push(name);
  }
  return fields;
}

function parseDays(name: string, value: unknown, fallbackMs: number): number {
  if (value === undefined || value === null || value === '') return fallbackMs;
  const days = typeof value === 'string' ? Number(value) : value;
  if (typeof days !== 'number' || !Number.isFinite(days) || days <= 0) {
    throw badQuery(name, `${name} must be a positive number of days, got ${describeValue(value)}`);
  }
  return days * DAY_MS;
}

/**
 * Device ids in the order replies use. Code-unit order, which equals SQLite's BINARY order for any
 * id without characters beyond U+FFFF; device ids are hex in practice.
 */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function badQuery(field: string, message: string): KasaError {
  return new KasaError('BAD_QUERY', message, { field });
}
