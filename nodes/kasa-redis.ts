import { DEFAULT_PREFIX, RedisConnection } from '../lib/cache/redis-connection';
import { describeError } from './shared/errors';
import { translator } from './shared/i18n';
import { onClose } from './shared/lifecycle';
import type { RedisConfigNode } from './shared/redis-node';
import { numberSetting } from './shared/settings';
import type { Node, NodeAPI, NodeDef } from './shared/types';

interface RedisDef extends NodeDef {
  url?: string;
  prefix?: string;
  ttl?: number | string;
}

interface RedisCredentials {
  username?: string;
  password?: string;
}

type KasaRedisNode = RedisConfigNode & Node<RedisCredentials>;

const DEFAULT_URL = 'redis://127.0.0.1:6379';
const DEFAULT_TTL_S = 300;
/** Distinct error replies logged per connection; past that they are only counted. */
const MAX_LOGGED_REPLIES = 20;

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'kasa-redis');

  function KasaRedis(this: KasaRedisNode, def: RedisDef): void {
    RED.nodes.createNode(this, def);
    // A spread, since the flow may carry no credentials for the node at all.
    const credentials: RedisCredentials = { ...this.credentials };
    this.ttlMs =
      numberSetting(RED, this, 'ttl', def.ttl, {
        fallback: DEFAULT_TTL_S,
        min: 0.001,
        max: 31_536_000,
      }) * 1000;
    this.connection = null;
    try {
      this.connection = new RedisConnection({
        url: def.url?.trim() || DEFAULT_URL,
        prefix: def.prefix ?? DEFAULT_PREFIX,
        username: credentials.username?.trim() || undefined,
        password: credentials.password || undefined,
      });
    } catch (error) {
      this.error(describeError(RED, error));
      return;
    }
    const connection = this.connection;
    const url = connection.displayUrl;

    // One line per change of state, however many reconnection attempts fail in between.
    let wasDown = false;
    connection.on('state', (state, cause) => {
      if (state === 'down' && cause !== null) {
        wasDown = true;
        this.warn(describeError(RED, cause));
      } else if (state === 'ready') {
        this.log(t(wasDown ? 'log.back' : 'log.connected', { url }));
        wasDown = false;
      }
    });
    const loggedReplies = new Set<string>();
    connection.on('reply-error', (error) => {
      if (loggedReplies.has(error.message) || loggedReplies.size >= MAX_LOGGED_REPLIES) return;
      loggedReplies.add(error.message);
      this.warn(describeError(RED, error));
    });

    onClose(this, async () => {
      await connection.close();
      connection.removeAllListeners();
    });
  }

  RED.nodes.registerType<KasaRedisNode, RedisDef, unknown, RedisCredentials>(
    'kasa-redis',
    KasaRedis,
    {
      credentials: { username: { type: 'text' }, password: { type: 'password' } },
    },
  );
};
