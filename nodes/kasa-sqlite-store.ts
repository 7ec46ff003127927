import { DAY_MS } from '../lib/store/query';
import { RetryingOpen } from '../lib/store/retrying-open';
import { databaseOf } from './shared/database-source';
import { translator } from './shared/i18n';
import { onClose, onInput, outOfService } from './shared/lifecycle';
import { kasaMonitorSettings, numberSetting, type NumberRule } from './shared/settings';
import { metricsOf } from './shared/metrics';
import { status } from './shared/status';
import { queryMode, storeMode } from './shared/store-modes';
import type { Node, NodeAPI, NodeDef } from './shared/types';

interface SqliteStoreDef extends NodeDef {
  db: string;
  mode?: string;
  batchSize?: number | string;
  flushInterval?: number | string;
  chart?: boolean | string;
  rawHorizon?: number | string;
}

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'kasa-sqlite-store');
  const context = { RED, t };

  function KasaSqliteStore(this: Node, def: SqliteStoreDef): void {
    RED.nodes.createNode(this, def);
    const source = databaseOf(RED, this, def.db, t);
    if (source === null) return;
    const modeName = def.mode?.trim() || 'store';
    if (modeName !== 'store' && modeName !== 'query') {
      const text = t('errors.unsupported-mode', { mode: def.mode });
      outOfService(this, t('status.unsupported-mode'), text, t);
      return;
    }

    const storing = modeName === 'store';
    const setting = (name: 'batchSize' | 'flushInterval' | 'rawHorizon', rule: NumberRule) =>
      numberSetting(RED, this, name, def[name], rule);
    // A query node asks nothing of the shared writer, so it never changes when rows are flushed.
    const writerOptions = storing
      ? {
          batchSize: setting('batchSize', { fallback: 1000, min: 1, max: 100_000, integer: true }),
          flushIntervalMs: setting('flushInterval', { fallback: 1, min: 0.05, max: 3600 }) * 1000,
        }
      : {};
    const queryOptions = storing
      ? null
      : {
          rawHorizonMs: setting('rawHorizon', { fallback: 7, min: 0.001, max: 3650 }) * DAY_MS,
          chart: def.chart === true || def.chart === 'true',
        };
    const metrics = metricsOf(RED);
    // A database that cannot be opened is tried again now and then, so creating the missing
    // folder (or freeing the file) is enough; its error is reported once, not per message.
    const opened = new RetryingOpen(
      () => {
        const lease = source.acquire(writerOptions);
        try {
          const mode =
            queryOptions === null
              ? storeMode(context, this, lease, metrics)
              : queryMode(context, this, lease, queryOptions, metrics);
          return { lease, mode };
        } catch (error) {
          lease.release();
          throw error;
        }
      },
      {
        retryMs: kasaMonitorSettings(RED).dbRetryMs ?? 10_000,
        onOpen: (_, recovered) => {
          if (recovered) this.log(t('log.opened'));
          status.idle(this, t('status.ready'));
        },
        onFail: () => status.error(this, t('status.open-failed')),
      },
    );
    opened.open();

    onInput(RED, this, (msg, send) => {
      const current = opened.get();
      if (current !== null) return current.mode.input(msg, send);
      const refusal = opened.refuse();
      if (refusal === null) return undefined;
      const refusedKey = storing ? 'open-failed-refused' : 'open-failed-unanswered';
      status.error(this, t(`status.${refusedKey}`, { refused: refusal.refused }));
      if (refusal.refused === 1) throw refusal.error;
      return undefined;
    });

    onClose(this, () => {
      const current = opened.take();
      // Released first: its final flush still reaches the metrics, which the mode disconnects.
      const lost = current?.lease.release() ?? 0;
      current?.mode.close();
      if (lost > 0) this.error(t('errors.lost', { rows: lost }));
      status.clear(this);
    });
  }

  RED.nodes.registerType('kasa-sqlite-store', KasaSqliteStore);
};
