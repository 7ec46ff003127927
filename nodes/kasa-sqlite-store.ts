import { instrumentWriter } from '../lib/metrics/instrument';
import type { MetricsRecorder } from '../lib/metrics/recorder';
import { ingest, writerHealth, type IngestResult } from '../lib/store/ingest';
import { answerQuery, DAY_MS, QueryEngine } from '../lib/store/query';
import type { DatabaseLease } from '../lib/store/registry';
import { RetryingOpen } from '../lib/store/retrying-open';
import { databaseOf } from './shared/database-source';
import { describeError } from './shared/errors';
import { translator } from './shared/i18n';
import { onClose, onInput, outOfService } from './shared/lifecycle';
import { kasaMonitorSettings, numberSetting, type NumberRule } from './shared/settings';
import { metricsOf } from './shared/metrics';
import { Refusals, status, throttled } from './shared/status';
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

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'kasa-sqlite-store');

  function storeMode(node: Node, lease: DatabaseLease, metrics: MetricsRecorder): Mode {
    let accepted = 0;
    const stopMetrics = instrumentWriter(metrics, lease.writer, lease.path);
    const showStatus = (): void => {
      const { state, ...figures } = writerHealth(lease.writer.stats);
      const text = t(`status.${state === 'ok' ? 'written' : state}`, {
        ...(state === 'ok' ? { rows: accepted } : {}),
        ...figures,
      });
      const show =
        state === 'ok' ? status.ok : state === 'write-failed' ? status.error : status.degraded;
      rejectedItems.show(node, show, text, t);
    };
    const statusUpdate = throttled(showStatus);
    const rejectedItems = new Refusals(() => statusUpdate.request());
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
        let result: IngestResult;
        try {
          result = ingest(lease.writer, msg.payload, msg.devices, msg.daily);
          accepted += result.readings;
          rejectedItems.record(result.rejected);
        } finally {
          statusUpdate.request();
        }
        const { readings, devices, days, total, rejectedDetail } = result;
        if (readings > 0 || devices > 0 || days > 0) {
          msg.stored = { accepted: readings, rejected: result.rejected };
          send(msg);
        }
        if (result.rejected > 0) {
          const count = result.rejected;
          throw new Error(t('errors.rejected', { count, total, detail: rejectedDetail }));
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
    { rawHorizonMs, chart }: { rawHorizonMs: number; chart: boolean },
    metrics: MetricsRecorder,
  ): Mode {
    const engine = new QueryEngine(lease.db, { rawHorizonMs });
    let answered = 0;
    let last = { rows: 0, ms: 0 };
    const statusUpdate = throttled(() => {
      if (answered === 0) refusals.show(node, status.idle, t('status.ready'), t);
      else refusals.show(node, status.ok, t('status.answered', { queries: answered, ...last }), t);
    });
    const refusals = new Refusals(() => statusUpdate.request());
    return {
      input(msg, send) {
        let answer;
        try {
          answer = answerQuery(engine, msg.payload, chart);
        } catch (error) {
          refusals.record(1);
          throw error;
        }
        msg.payload = answer.payload;
        msg.query = answer.query;
        if (chart) msg.action = 'replace';
        answered += 1;
        metrics.query(answer.query.type, answer.ms);
        last = { rows: answer.query.count, ms: Math.round(answer.ms * 10) / 10 };
        refusals.record(0);
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
              ? storeMode(this, lease, metrics)
              : queryMode(this, lease, queryOptions, metrics);
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
