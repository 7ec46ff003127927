import { LocalDays } from '../lib/store/local-day';
import { type RetentionProgress, type RetentionReport } from '../lib/store/retention';
import { vacuumsIncrementally } from '../lib/store/database';
import { type RetentionRun, runRetentionInWorker } from '../lib/store/retention-runner';
import type { DatabaseLease } from '../lib/store/registry';
import { databaseOf } from './shared/database-source';
import { describeError } from './shared/errors';
import { translator } from './shared/i18n';
import { onClose, onInput, outOfService, reportSetupError } from './shared/lifecycle';
import { numberSetting, type NumberRule } from './shared/settings';
import { metricsOf } from './shared/metrics';
import { status } from './shared/status';
import type { Node, NodeAPI, NodeDef } from './shared/types';

interface RetentionDef extends NodeDef {
  db: string;
  rawDays?: number | string;
  hourlyDays?: number | string;
  dailyDays?: number | string;
  timezone?: string;
  every?: number | string;
  /** Give the space of deleted rows back to the file system after each run. */
  vacuum?: boolean;
}

const MINUTE_MS = 60_000;

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'kasa-retention');

  function KasaRetention(this: Node, def: RetentionDef): void {
    RED.nodes.createNode(this, def);
    const source = databaseOf(RED, this, def.db, t);
    if (source === null) return;
    const timeZone = def.timezone?.trim() ?? '';
    try {
      if (timeZone !== '') new LocalDays(timeZone);
    } catch {
      outOfService(this, t('status.bad-timezone'), t('errors.bad-timezone', { zone: timeZone }), t);
      return;
    }
    const setting = (name: 'rawDays' | 'hourlyDays' | 'dailyDays' | 'every', rule: NumberRule) =>
      numberSetting(RED, this, name, def[name], rule);
    const options = {
      rawDays: setting('rawDays', { fallback: 7, min: 0, max: 3650 }),
      hourlyDays: setting('hourlyDays', { fallback: 30, min: 0, max: 3650 }),
      dailyDays: setting('dailyDays', { fallback: 365, min: 0, max: 36_500 }),
      ...(timeZone === '' ? {} : { timeZone }),
      incrementalVacuum: def.vacuum === true,
    };
    const everyMs = setting('every', { fallback: 60, min: 0, max: 525_600 }) * MINUTE_MS;
    const metrics = metricsOf(RED);

    // Holding a lease makes sure the file exists with its schema before the worker opens it.
    let lease: DatabaseLease | null = null;
    try {
      lease = source.acquire({});
    } catch (error) {
      status.error(this, t('status.open-failed'));
      reportSetupError(this, describeError(RED, error));
    }

    if (options.incrementalVacuum && lease !== null && !vacuumsIncrementally(lease.db)) {
      // Files of older versions were created without it; the rest of retention works as ever.
      this.warn(t('warnings.no-vacuum', { path: source.path }));
    }

    let run: RetentionRun | null = null;
    let current: Promise<RetentionReport> | null = null;
    let timer: NodeJS.Timeout | null = null;
    let closed = false;

    const showProgress = (p: RetentionProgress): void =>
      status.ok(this, t(`status.${p.phase}`, { ...p }));

    /** Starts a run, or joins the one in progress: two requests never run twice at once. */
    const start = (): Promise<RetentionReport> => {
      if (current !== null) return current;
      try {
        // Readings still queued in the writer belong in this run; a failing writer reports itself.
        lease?.writer.flush();
      } catch {
        // The run goes ahead with what is on disk.
      }
      status.connecting(this, t('status.starting'));
      const thisRun = runRetentionInWorker(source.path, options, showProgress);
      run = thisRun;
      current = thisRun.result.then(
        (report) => {
          metrics.retention(report.duration_ms, report.rolled_up, report.deleted);
          status.ok(this, t('status.done', { ...report }));
          return report;
        },
        (error: unknown) => {
          if (!closed) status.error(this, t('status.failed'));
          throw error;
        },
      );
      const finished = (): void => {
        current = null;
        run = null;
      };
      current.then(finished, finished);
      return current;
    };

    const schedule = (): void => {
      if (everyMs <= 0 || closed) return;
      timer = setTimeout(() => {
        timer = null;
        start().then(
          (report) => this.send({ topic: 'retention', payload: report }),
          (error: unknown) => {
            if (!closed) this.error(describeError(RED, error), {});
          },
        );
        // The next run is counted from the start of this one, so runs keep to the period.
        schedule();
      }, everyMs);
    };
    schedule();
    if (everyMs > 0) status.idle(this, t('status.scheduled', { minutes: everyMs / MINUTE_MS }));
    else status.idle(this, t('status.on-input'));

    onInput(RED, this, async (msg, send) => {
      msg.payload = await start();
      send(msg);
    });

    onClose(this, async () => {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      await run?.terminate();
      lease?.release();
      lease = null;
      status.clear(this);
    });
  }

  RED.nodes.registerType('kasa-retention', KasaRetention);
};
