import { isKasaError, type KasaErrorCode } from '../../lib/errors';
import { MODULE_NAME, type NodeAPI } from './types';

/** Which node set's catalog holds the text of each error code. */
const CATALOG_OF_CODE: Record<
  KasaErrorCode,
  | 'kasa-device-pool'
  | 'kasa-sqlite-db'
  | 'kasa-sqlite-store'
  | 'kasa-retention'
  | 'kasa-cache'
  | 'kasa-redis'
> = {
  BAD_DEVICE_ENTRY: 'kasa-device-pool',
  DEVICE_TIMEOUT: 'kasa-device-pool',
  DEVICE_UNREACHABLE: 'kasa-device-pool',
  DEVICE_CLOSED: 'kasa-device-pool',
  DEVICE_BAD_REPLY: 'kasa-device-pool',
  DEVICE_ERROR_REPLY: 'kasa-device-pool',
  DEVICE_BACKING_OFF: 'kasa-device-pool',
  NO_EMETER: 'kasa-device-pool',
  NO_SUCH_OUTLET: 'kasa-device-pool',
  IMPLAUSIBLE_READING: 'kasa-device-pool',
  POOL_CLOSED: 'kasa-device-pool',
  BACKFILL_FAILED: 'kasa-device-pool',
  BAD_READING: 'kasa-sqlite-db',
  DB_OPEN_FAILED: 'kasa-sqlite-db',
  DB_WRITE_FAILED: 'kasa-sqlite-db',
  WRITER_QUEUE_FULL: 'kasa-sqlite-db',
  WRITER_CLOSED: 'kasa-sqlite-db',
  BAD_QUERY: 'kasa-sqlite-store',
  RETENTION_FAILED: 'kasa-retention',
  RETENTION_STOPPED: 'kasa-retention',
  CACHE_BAD_KEY: 'kasa-cache',
  CACHE_BAD_VALUE: 'kasa-cache',
  CACHE_BAD_TTL: 'kasa-cache',
  CACHE_BAD_SETTING: 'kasa-cache',
  CACHE_BACKEND_UNAVAILABLE: 'kasa-redis',
  CACHE_BACKEND_ERROR: 'kasa-redis',
};

/**
 * The user-facing text of an error: a catalog entry for coded errors (filled with the error's
 * details and its own message as `detail`), the plain message otherwise.
 */
export function describeError(RED: NodeAPI, error: unknown): string {
  if (isKasaError(error)) {
    const catalog = CATALOG_OF_CODE[error.code];
    const key = `${MODULE_NAME}/${catalog}:${catalog}.errors.${error.code}`;
    const text = RED._(key, { ...error.details, detail: error.message });
    return text === key ? error.message : text;
  }
  return error instanceof Error ? error.message : String(error);
}
