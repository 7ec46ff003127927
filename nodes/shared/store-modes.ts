import { instrumentWriter } from '../../lib/metrics/instrument';
import type { MetricsRecorder } from '../../lib/metrics/recorder';
import { ingest, writerHealth, type IngestResult } from '../../lib/store/ingest';
import { answerQuery, QueryEngine } from '../../lib/store/query';
import type { DatabaseLease } from '../../lib/store/registry';
import { describeError } from './errors';
import type { Translate } from './i18n';
import { Refusals, status, throttled } from './status';
import type { Node, NodeAPI, NodeMessageInFlow, SendFunction } from './types';

type StoreMessage = NodeMessageInFlow & {
  devices?: unknown;
  daily?: unknown;
  stored?: { accepted: number; rejected: number };
  query?: unknown;
  action?: string;
};

/** kasa-sqlite-store's two modes: what a message does once the database is open. */
export interface Mode {
  input(msg: StoreMessage, send: SendFunction): void;
  close(): void;
}

/** What the modes need of the node type: the runtime and its message catalog. */
export interface ModeContext {
  RED: NodeAPI;
  t: Translate;
}

/**
 * Store mode: queues a message's valid readings, devices and days on the shared writer, passes
 * the message on with `msg.stored`, and names the items it left out in one catchable error.
 */
export function storeMode(
  { RED, t }: ModeContext,
  node: Node,
  lease: DatabaseLease,
  metrics: MetricsRecorder,
): Mode {
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

/** Query mode: answers `msg.payload` as a query against the database, read-only. */
export function queryMode(
  { t }: ModeContext,
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
