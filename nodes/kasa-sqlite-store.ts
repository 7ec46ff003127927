import { performance } from 'node:perf_hooks';

import { instrumentWriter } from '../lib/metrics/instrument';
import type { MetricsRecorder } from '../lib/metrics/recorder';
import { describeRejected, toStoreInput } from '../lib/readings/validate';
import { DAY_MS, QueryEngine, toChartPoints } from '../lib/store/query';
import type { DatabaseLease } from '../lib/store/registry';
import { databaseOf } from './shared/database-source';
import { describeError } from './shared/errors';
import { translator } from './shared/i18n';
import { onClose, onInput, reportSetupError } from './shared/lifecycle';
import { numberSetting } from './shared/settings';
import { metricsOf } from './shared/metrics';
import { status, throttled } from './shared/status';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, SendFunction } from './shared/types';

interface SqliteStoreDef extends NodeDef {
  db: string;
  mode?: string;
  batchSize?: number | string;
  flushInterval?: number | string;
  chart?: boolean | string;
  rawHorizon?: number | string;
}

type StoreMessage = NodeMessageInFlow & {
  devices?: unknown;
  daily?: unknown;
  stored?: { accepted: number; rejected: number };
  query?: unknown;
  action?: string;
};

interface Mode {
  input(msg: StoreMessage, send: SendFunction): void;
  close(): void;
}

const QUEUE_WARN_RATIO = 0.8;

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'kasa-sqlite-store');

  function storeMode(node: Node, lease: DatabaseLease, metrics: MetricsRecorder): Mode {
    let accepted = 0;
    const stopMetrics = instrumentWriter(metrics, lease.writer, lease.path);
    const showStatus = (): void => {
      const stats = lease.writer.stats;
      const queued = stats.queueDepth;
      if (stats.failing) {
        const transient = stats.lastError?.details.transient === true;
        (transient ? status.degraded : status.error)(
          node,
          t(transient ? 'status.retrying' : 'status.write-failed', { queued }),
        );
      } else if (queued > stats.maxQueuedRows * QUEUE_WARN_RATIO) {
        status.degraded(node, t('status.queue-high', { queued, max: stats.maxQueuedRows }));
      } else {
        status.ok(node, t('status.written', { rows: accepted, queued }));
      }
    };
    const statusUpdate = throttled(showStatus);
    // Failures and recoveries are rare and matter: they are shown at once, not throttled.
    lease.on('error', (error) => {
      node.error(describeError(RED, error));
      showStatus();
    });
    lease.on('recovered', (info) => {
      node.log(t('log.recovered', { seconds: Math.round(info.failedForMs / 1000) }));
      showStatus();
    });
    lease.on('flush', () => statusUpdate.request());
    return {
      input(msg, send) {
        const { readings, devices, daily, rejected } = toStoreInput(
          msg.payload,
          msg.devices,
          msg.daily,
        );
        try {
          lease.writer.enqueue(readings);
          lease.writer.upsertDevices(devices);
          lease.writer.addDeviceDays(daily);
        } catch (error) {
          statusUpdate.request();
          throw new Error(describeError(RED, error), { cause: error });
        }
        accepted += readings.length;
        statusUpdate.request();
        if (readings.length > 0 || devices.length > 0 || daily.length > 0) {
          msg.stored = { accepted: readings.length, rejected: rejected.length };
          send(msg);
        }
        if (rejected.length > 0) {
          const total = readings.length + devices.length + daily.length + rejected.length;
          const detail = describeRejected(rejected);
          throw new Error(t('errors.rejected', { count: rejected.length, total, detail }));
        }
      },
      close: () => {
        statusUpdate.stop();
        stopMetrics();
      },
    };
  }

  function queryMode(
    node: Node,
    lease: DatabaseLease,
    def: SqliteStoreDef,
    metrics: MetricsRecorder,
  ): Mode {
    const engine = new QueryEngine(lease.db, {
      rawHorizonMs:
        numberSetting(RED, node, 'rawHorizon', def.rawHorizon, {
          fallback: 7,
          min: 0.001,
          max: 3650,
        }) * DAY_MS,
    });
    const chart = def.chart === true || def.chart === 'true';
    let answered = 0;
    let last = { rows: 0, ms: 0 };
    const statusUpdate = throttled(() =>
      status.ok(node, t('status.answered', { queries: answered, ...last })),
    );
    return {
      input(msg, send) {
        const started = performance.now();
        let result;
        try {
          result = engine.run(msg.payload);
        } catch (error) {
          throw new Error(describeError(RED, error), { cause: error });
        }
        const { type, tier, rows, next_cursor } = result;
        msg.payload = chart ? toChartPoints(result) : rows;
        msg.query = { type, tier, count: rows.length, next_cursor };
        if (chart) msg.action = 'replace';
        answered += 1;
        const ms = performance.now() - started;
        metrics.query(type, ms);
        last = { rows: rows.length, ms: Math.round(ms * 10) / 10 };
        statusUpdate.request();
        send(msg);
      },
      close: () => statusUpdate.stop(),
    };
  }

  function KasaSqliteStore(this: Node, def: SqliteStoreDef): void {
    RED.nodes.createNode(this, def);
    const source = databaseOf(RED, this, def.db, t);
    if (source === null) return;
    const modeName = def.mode?.trim() || 'store';
    if (modeName !== 'store' && modeName !== 'query') {
      status.error(this, t('status.unsupported-mode'));
      reportSetupError(this, t('errors.unsupported-mode', { mode: def.mode }));
      return;
    }

    let lease: DatabaseLease | null = null;
    let mode: Mode | null = null;
    // A database that cannot be opened is tried again now and then, so creating the missing
    // folder (or freeing the file) is enough; its error is reported once, not per message.
    let failure: { error: unknown; at: number; refused: number } | null = null;
    const retryMs =
      (RED.settings as { kasaMonitor?: { dbRetryMs?: number } }).kasaMonitor?.dbRetryMs ?? 10_000;
    const open = (): void => {
      try {
        // A query node asks nothing of the shared writer, so it never changes when rows are flushed.
        lease = source.acquire(
          modeName === 'store'
            ? {
                batchSize: numberSetting(RED, this, 'batchSize', def.batchSize, {
                  fallback: 1000,
                  min: 1,
                  max: 100_000,
                  integer: true,
                }),
                flushIntervalMs:
                  numberSetting(RED, this, 'flushInterval', def.flushInterval, {
                    fallback: 1,
                    min: 0.05,
                    max: 3600,
                  }) * 1000,
              }
            : {},
        );
        const metrics = metricsOf(RED);
        mode =
          modeName === 'store'
            ? storeMode(this, lease, metrics)
            : queryMode(this, lease, def, metrics);
        if (failure !== null) this.log(t('log.opened'));
        failure = null;
        status.idle(this, t('status.ready'));
      } catch (error) {
        failure = { error, at: Date.now(), refused: failure?.refused ?? 0 };
        status.error(this, t('status.open-failed'));
      }
    };
    open();

    onInput(this, (msg, send) => {
      if (mode === null && failure !== null && Date.now() - failure.at >= retryMs) open();
      if (mode !== null) return mode.input(msg, send);
      if (failure === null) return undefined;
      failure.refused += 1;
      const refusedKey = modeName === 'store' ? 'open-failed-refused' : 'open-failed-unanswered';
      status.error(this, t(`status.${refusedKey}`, { refused: failure.refused }));
      if (failure.refused === 1)
        throw new Error(describeError(RED, failure.error), { cause: failure.error });
      return undefined;
    });

    onClose(this, () => {
      // Released first: its final flush still reaches the metrics, which the mode disconnects.
      const lost = lease?.release() ?? 0;
      lease = null;
      mode?.close();
      mode = null;
      if (lost > 0) this.error(t('errors.lost', { rows: lost }));
      status.clear(this);
    });
  }

  RED.nodes.registerType('kasa-sqlite-store', KasaSqliteStore);
};
