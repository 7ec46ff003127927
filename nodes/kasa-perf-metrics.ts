import type { Request, Response } from 'express';

import type { MetricsRegistry, MetricsSnapshot } from '../lib/metrics/registry';
import { CrossingWatch } from '../lib/metrics/threshold';
import { errorMessage } from '../lib/errors';
import { translator } from './shared/i18n';
import { onClose, onInput, reportSetupError } from './shared/lifecycle';
import { metricsRegistry } from './shared/metrics';
import { kasaMonitorSettings, numberSetting } from './shared/settings';
import { Refusals, status } from './shared/status';
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from './shared/types';

interface PerfMetricsDef extends NodeDef {
  interval?: number | string;
  memoryLimit?: number | string;
  endpoint?: boolean | string;
  path?: string;
}

type MetricsMessage = NodeMessageInFlow & { reset?: unknown };

interface RouteLayer {
  route?: { path?: string; stack?: { handle?: unknown }[] };
}

const DEFAULT_PATH = '/kasa-metrics';
const MB = 1024 * 1024;

/** A path Node-RED's http server can route: starts with '/', no spaces, no route parameters. */
function validPath(path: string): boolean {
  return /^\/[A-Za-z0-9_\-./~]*$/.test(path);
}

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'kasa-perf-metrics');

  function KasaPerfMetrics(this: Node, def: PerfMetricsDef): void {
    RED.nodes.createNode(this, def);
    const metrics: MetricsRegistry | null = metricsRegistry(RED);
    if (metrics === null) {
      status.idle(this, t('status.off'));
      this.warn(t('errors.off'));
      onInput(RED, this, () => {
        throw new Error(t('errors.off'));
      });
      return;
    }
    const intervalS = numberSetting(RED, this, 'interval', def.interval, {
      fallback: 60,
      min: 0,
      max: 86_400,
    });
    const limitMb = numberSetting(RED, this, 'memoryLimit', def.memoryLimit, {
      fallback: 500,
      min: 0,
      max: 1_048_576,
    });
    const endpoint = def.endpoint === true || def.endpoint === 'true';
    const path = def.path?.trim() || DEFAULT_PATH;
    // The snapshots go on, but the status keeps saying the endpoint is not served.
    const badPath = endpoint && !validPath(path);
    const memoryUsage = kasaMonitorSettings(RED).memoryUsage ?? (() => process.memoryUsage());

    const window = metrics.openWindow();
    const memoryWatch = limitMb > 0 ? new CrossingWatch(limitMb * MB) : null;
    let timer: NodeJS.Timeout | null = null;
    let closed = false;

    let figures = { show: status.idle, text: t('status.waiting') };
    const drawStatus = (): void => {
      if (badPath) status.error(this, t('status.bad-path'));
      else refusals.show(this, figures.show, figures.text, t);
    };
    const refusals = new Refusals(drawStatus);
    const showStatus = (snapshot: MetricsSnapshot): void => {
      const p95 = snapshot.operations.poll?.p95_ms;
      const rate = snapshot.cache.hit_rate;
      const text = t('status.figures', {
        rate: snapshot.pool.polls_per_s.toFixed(1),
        p95: p95 === undefined ? '-' : p95.toFixed(1),
        hits: rate === null ? '-' : `${Math.round(rate * 100)}%`,
      });
      figures = { show: memoryWatch?.isAbove === true ? status.degraded : status.ok, text };
      drawStatus();
    };

    /** Builds the snapshot, checks the memory threshold and sends on the matching outputs. */
    const emit = (msg: MetricsMessage | null): void => {
      const snapshot = metrics.snapshot(window);
      const rss = memoryUsage().rss;
      const crossed = memoryWatch?.check(rss) === true;
      showStatus(snapshot);
      if (closed) return;
      const out: NodeMessage = msg ?? { topic: 'kasa-perf-metrics' };
      out.payload = snapshot;
      let warning: NodeMessage | null = null;
      if (crossed) {
        const rssMb = Math.round(rss / MB);
        const text = t('warnings.memory', { rss: rssMb, limit: limitMb });
        this.warn(text);
        warning = {
          topic: 'memory',
          payload: { rss_mb: rssMb, limit_mb: limitMb, message: text },
        };
      }
      this.send([out, warning]);
    };

    const tick = (): void => {
      timer = null;
      try {
        emit(null);
      } catch (error) {
        this.error(errorMessage(error));
      }
      schedule();
    };
    const schedule = (): void => {
      if (closed || intervalS <= 0) return;
      timer = setTimeout(tick, intervalS * 1000);
    };

    let handler: ((req: Request, res: Response) => void) | null = null;
    drawStatus();
    if (endpoint) {
      if (badPath) {
        reportSetupError(this, t('errors.bad-path', { path }));
      } else {
        handler = (_req, res) => {
          metrics.prometheus().then(
            (text) => {
              // Exactly prom-client's type: Express's res.set would reorder its parameters.
              res.setHeader('Content-Type', metrics.contentType);
              res.end(text);
            },
            (error: unknown) => res.status(500).send(errorMessage(error)),
          );
        };
        RED.httpNode.get(path, handler);
      }
    }

    onInput(
      RED,
      this,
      (msg: MetricsMessage) => {
        if (msg.reset !== undefined && typeof msg.reset !== 'boolean') {
          throw new Error(t('errors.bad-reset', { value: JSON.stringify(msg.reset) }));
        }
        // The message gets the figures of the window it closes; the next window starts now.
        emit(msg);
        if (msg.reset === true) metrics.resetWindow(window);
      },
      refusals,
    );

    onClose(this, () => {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      if (handler !== null) removeRoute(RED, handler);
      handler = null;
      metrics.closeWindow(window);
      status.clear(this);
    });

    schedule();
  }

  RED.nodes.registerType('kasa-perf-metrics', KasaPerfMetrics);
};

/** Takes a GET route out of Node-RED's http node server (Express has no removal of its own). */
function removeRoute(RED: NodeAPI, handler: unknown): void {
  const router = (RED.httpNode as unknown as { _router?: { stack: RouteLayer[] } })._router;
  if (router === undefined) return;
  router.stack = router.stack.filter(
    (layer) => layer.route?.stack?.some((entry) => entry.handle === handler) !== true,
  );
}
