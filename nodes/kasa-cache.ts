import { ChangeFilter } from '../lib/cache/change-filter';
import { type CacheLease, caches } from '../lib/cache/registry';
import { instrumentCache } from '../lib/metrics/instrument';
import type { SecondLevelState } from '../lib/cache/types';
import { describeError } from './shared/errors';
import { translator } from './shared/i18n';
import { onClose, onInput, outOfService, reportSetupError } from './shared/lifecycle';
import { metricsOf } from './shared/metrics';
import type { RedisConfigNode } from './shared/redis-node';
import { numberSetting } from './shared/settings';
import { Refusals, status, throttled } from './shared/status';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from './shared/types';

type Mode = 'set' | 'get' | 'delete' | 'clear';

interface CacheDef extends NodeDef {
  cache?: string;
  mode?: string;
  property?: string;
  maxEntries?: number | string;
  ttl?: number | string;
  redis?: string;
  onlyChanged?: boolean;
  deadband?: number | string;
}

type CacheMessage = NodeMessageInFlow & { ttl?: unknown; cache?: unknown };

const MODES: readonly string[] = ['set', 'get', 'delete', 'clear'];

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'kasa-cache');

  function KasaCache(this: Node, def: CacheDef): void {
    RED.nodes.createNode(this, def);
    const name = def.cache?.trim() || 'default';
    const mode = (MODES.includes(def.mode ?? '') ? def.mode : 'set') as Mode;
    const property = def.property?.trim() || 'topic';
    const ttlMs =
      numberSetting(RED, this, 'ttl', def.ttl, { fallback: 60, min: 0.001, max: 31_536_000 }) *
      1000;
    const maxEntries = numberSetting(RED, this, 'maxEntries', def.maxEntries, {
      fallback: 1000,
      min: 1,
      max: 10_000_000,
      integer: true,
    });
    const redisNode = def.redis ? (RED.nodes.getNode(def.redis) as RedisConfigNode | null) : null;
    const connection = redisNode?.connection ?? null;
    if (def.redis && connection === null) reportSetupError(this, t('errors.no-redis'));

    let lease: CacheLease;
    try {
      lease = caches.acquire(name, {
        maxEntries,
        ttlMs,
        secondLevel: connection,
        secondLevelTtlMs: redisNode?.ttlMs,
      });
    } catch (error) {
      outOfService(this, t('status.bad-settings'), describeError(RED, error), t);
      return;
    }
    if (lease.replacedOthers) this.warn(t('log.rebuilt', { cache: name }));
    const stopMetrics = instrumentCache(metricsOf(RED), lease.cache);
    const filter =
      mode === 'set' && def.onlyChanged === true
        ? new ChangeFilter({
            deadbandW: numberSetting(RED, this, 'deadband', def.deadband, {
              fallback: 0,
              min: 0,
              max: 100_000,
            }),
            maxEntries,
            ttlMs,
          })
        : null;

    const showStatus = (): void => {
      const stats = lease.cache.stats();
      const counts = {
        entries: stats.entries,
        h1: stats.l1.hits,
        m1: stats.l1.misses,
        h2: stats.l2?.hits ?? 0,
        m2: stats.l2?.misses ?? 0,
        ev: stats.evictions,
      };
      const state: SecondLevelState | null = stats.l2?.state ?? null;
      const show = (how: typeof status.ok, key: string) =>
        refusals.show(this, how, t(`status.${key}`, counts), t);
      if (def.redis && connection === null) show(status.error, 'no-redis');
      else if (state === null) show(status.ok, 'memory');
      else if (state === 'ready') show(status.ok, 'two-levels');
      else if (state === 'down') show(status.degraded, 'redis-down');
      else show(status.degraded, 'redis-connecting');
    };
    const statusChanged = throttled(showStatus);
    const refusals = new Refusals(() => statusChanged.request());
    connection?.on('state', showStatus);

    const keyOf = (msg: CacheMessage): string => {
      const key: unknown = RED.util.getMessageProperty(msg, property);
      if ((typeof key === 'string' && key !== '') || (typeof key === 'number' && isFinite(key))) {
        return String(key);
      }
      throw new Error(t('errors.no-key', { property }));
    };

    const handle = async (msg: CacheMessage): Promise<(CacheMessage | null)[] | null> => {
      const cache = lease.cache;
      if (mode === 'clear') {
        msg.cache = { cleared: await cache.clear() };
        return [msg];
      }
      const key = keyOf(msg);
      if (mode === 'delete') {
        msg.cache = { deleted: await cache.delete(key) };
        return [msg];
      }
      if (mode === 'set') {
        const ttl = msg.ttl === undefined ? undefined : Number(msg.ttl);
        await cache.set(key, msg.payload, ttl);
        return filter === null || filter.changed(key, msg.payload, ttl) ? [msg] : null;
      }
      const found = await cache.get(key);
      if (!found.hit) return [null, msg];
      msg.payload = found.value;
      msg.cache = { hit: true, level: found.level, age_ms: found.ageMs };
      return [msg, null];
    };

    onInput(
      RED,
      this,
      async (msg: CacheMessage, send) => {
        let out: (CacheMessage | null)[] | null;
        try {
          out = await handle(msg);
        } finally {
          statusChanged.request();
        }
        if (out !== null) send(out);
      },
      refusals,
    );

    onClose(this, () => {
      statusChanged.stop();
      connection?.off('state', showStatus);
      stopMetrics();
      lease.release();
      status.clear(this);
    });

    showStatus();
  }

  RED.nodes.registerType('kasa-cache', KasaCache);
};
