import type { RedisConnection } from '../../lib/cache/redis-connection';
import type { Node } from './types';

/** What kasa-cache sees of a kasa-redis config node. */
export interface RedisConfigNode extends Node {
  /** Null when the settings were invalid (the config node reported why). */
  connection: RedisConnection | null;
  /** How long Redis keeps a value, ms. */
  ttlMs: number;
}
