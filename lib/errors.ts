/** Stable error codes; the Node-RED glue maps each to a message-catalog entry. */
export type KasaErrorCode =
  | 'BAD_DEVICE_ENTRY'
  | 'DEVICE_TIMEOUT'
  | 'DEVICE_UNREACHABLE'
  | 'DEVICE_CLOSED'
  | 'DEVICE_BAD_REPLY'
  | 'DEVICE_ERROR_REPLY'
  | 'DEVICE_BACKING_OFF'
  | 'NO_EMETER'
  | 'NO_SUCH_OUTLET'
  | 'IMPLAUSIBLE_READING'
  | 'POOL_CLOSED'
  | 'BACKFILL_FAILED'
  | 'BAD_READING'
  | 'DB_OPEN_FAILED'
  | 'DB_WRITE_FAILED'
  | 'WRITER_QUEUE_FULL'
  | 'WRITER_CLOSED'
  | 'BAD_QUERY'
  | 'RETENTION_FAILED'
  | 'RETENTION_STOPPED'
  | 'CACHE_BAD_KEY'
  | 'CACHE_BAD_VALUE'
  | 'CACHE_BAD_TTL'
  | 'CACHE_BAD_SETTING'
  | 'CACHE_BACKEND_UNAVAILABLE'
  | 'CACHE_BACKEND_ERROR';

/** An error with a stable `code` and the context needed to say which device or file it concerns. */
export class KasaError extends Error {
  readonly code: KasaErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: KasaErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KasaError';
    this.code = code;
    this.details = details;
  }
}

export function isKasaError(error: unknown): error is KasaError {
  return error instanceof KasaError;
}

/** Codes worth a quick retry: the device may answer the very next attempt. */
export const TRANSIENT_CODES: ReadonlySet<KasaErrorCode> = new Set([
  'DEVICE_TIMEOUT',
  'DEVICE_CLOSED',
  'DEVICE_BAD_REPLY',
]);

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A short description of a value that was not what was asked for, for error messages: strings
 * quoted (cut at 60 characters), numbers and booleans as themselves (NaN stays NaN, where JSON
 * would say null), otherwise the kind of value.
 */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 60));
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}
