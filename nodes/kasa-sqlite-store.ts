import { describeRejected, toStoreInput } from '../lib/readings/validate';
import type { DatabaseLease, DatabaseSource } from '../lib/store/registry';
import { describeError } from './shared/errors';
import { translator } from './shared/i18n';
import { onClose, onInput } from './shared/lifecycle';
import { status } from './shared/status';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from './shared/types';

interface SqliteStoreDef extends NodeDef {
  db: string;
  mode?: string;
  batchSize?: number | string;
  flushInterval?: number | string;
}

type StoreMessage = NodeMessageInFlow & {
  devices?: unknown;
  stored?: { accepted: number; rejected: number };
};

const STATUS_EVERY_MS = 1000;
const QUEUE_WARN_RATIO = 0.8;

const positive = (value: number | string | undefined, fallback: number): number => {
  const parsed = typeof value === 'number' ? value : Number.parseFloat(value ?? '');
  return Number.isFinite(parsed) && parsed > 0 ? parsed : fallback;
};

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'kasa-sqlite-store');

  function KasaSqliteStore(this: Node, def: SqliteStoreDef): void {
    RED.nodes.createNode(this, def);
    const source = (RED.nodes.getNode(def.db) as (Node & { database?: DatabaseSource }) | null)
      ?.database;
    if (source === undefined) {
      status.error(this, t('status.no-config'));
      this.error(t('errors.missing-config'));
      return;
    }
    if ((def.mode?.trim() || 'store') !== 'store') {
      status.error(this, t('status.unsupported-mode'));
      this.error(t('errors.unsupported-mode', { mode: def.mode }));
      return;
    }

    let lease: DatabaseLease | null = null;
    let openError: unknown = null;
    try {
      lease = source.acquire({
        batchSize: Math.round(positive(def.batchSize, 1000)),
        flushIntervalMs: positive(def.flushInterval, 1) * 1000,
      });
    } catch (error) {
      openError = error;
      status.error(this, t('status.open-failed'));
    }

    let accepted = 0;
    let statusTimer: NodeJS.Timeout | null = null;
    let statusStale = false;
    const showStatus = (): void => {
      if (lease === null) return;
      const stats = lease.writer.stats;
      const queued = stats.queueDepth;
      if (stats.failing) {
        const transient = stats.lastError?.details.transient === true;
        (transient ? status.degraded : status.error)(
          this,
          t(transient ? 'status.retrying' : 'status.write-failed', { queued }),
        );
      } else if (queued > stats.maxQueuedRows * QUEUE_WARN_RATIO) {
        status.degraded(this, t('status.queue-high', { queued, max: stats.maxQueuedRows }));
      } else {
        status.ok(this, t('status.written', { rows: accepted, queued }));
      }
    };
    // At most one status update per second however many messages arrive; the last change is
    // always shown when the second is over.
    const statusChanged = (): void => {
      if (statusTimer !== null) {
        statusStale = true;
        return;
      }
      showStatus();
      statusTimer = setTimeout(() => {
        statusTimer = null;
        if (statusStale) {
          statusStale = false;
          statusChanged();
        }
      }, STATUS_EVERY_MS);
    };

    if (lease !== null) {
      lease.on('error', (error) => {
        this.error(describeError(RED, error));
        showStatus();
      });
      lease.on('recovered', (info) => {
        this.log(t('log.recovered', { seconds: Math.round(info.failedForMs / 1000) }));
        showStatus();
      });
      lease.on('flush', statusChanged);
      status.idle(this, t('status.ready'));
    }

    onInput(this, (msg, send) => {
      if (lease === null) throw new Error(describeError(RED, openError));
      const message = msg as StoreMessage;
      const { readings, devices, rejected } = toStoreInput(message.payload, message.devices);
      try {
        lease.writer.enqueue(readings);
        lease.writer.upsertDevices(devices);
      } catch (error) {
        statusChanged();
        throw new Error(describeError(RED, error), { cause: error });
      }
      accepted += readings.length;
      statusChanged();
      if (readings.length > 0 || devices.length > 0) {
        message.stored = { accepted: readings.length, rejected: rejected.length };
        send(message);
      }
      if (rejected.length > 0) {
        const total = readings.length + devices.length + rejected.length;
        const detail = describeRejected(rejected);
        throw new Error(t('errors.rejected', { count: rejected.length, total, detail }));
      }
    });

    onClose(this, () => {
      if (statusTimer !== null) clearTimeout(statusTimer);
      statusTimer = null;
      const lost = lease?.release() ?? 0;
      lease = null;
      if (lost > 0) this.error(t('errors.lost', { rows: lost }));
      status.clear(this);
    });
  }

  RED.nodes.registerType('kasa-sqlite-store', KasaSqliteStore);
};
