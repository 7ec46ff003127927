import { instrumentIntervals } from '../lib/metrics/instrument';
import { AdaptiveIntervals, DEFAULT_POLICY } from '../lib/polling/adaptive-interval';
import { translator } from './shared/i18n';
import { onClose, onInput } from './shared/lifecycle';
import { numberSetting } from './shared/settings';
import { metricsOf } from './shared/metrics';
import { Refusals, status } from './shared/status';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/types';

type Setting = number | string | undefined;

interface AdaptiveIntervalDef extends NodeDef {
  base: Setting;
  max: Setting;
  min: Setting;
  lowCv: Setting;
  highCv: Setting;
  window: Setting;
  deadband: Setting;
  hold: Setting;
}

interface ReadingLike {
  device_id: string;
  power_w?: unknown;
  cached?: unknown;
}

const isReading = (value: unknown): value is ReadingLike =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  typeof (value as { device_id?: unknown }).device_id === 'string' &&
  (value as { device_id: string }).device_id !== '';

export = function (RED: NodeAPI): void {
  function KasaAdaptiveInterval(this: Node, def: AdaptiveIntervalDef): void {
    RED.nodes.createNode(this, def);
    const t = translator(RED, 'kasa-adaptive-interval');
    // Blank keeps the default; anything else that is not a number (an unset or mistyped
    // ${ENV_VAR}) is said once, naming the setting, and the default used.
    const setting = (name: keyof AdaptiveIntervalDef, fallback: number, scale = 1): number =>
      numberSetting(RED, this, name, def[name], { fallback: fallback / scale }) * scale;
    const intervals = new AdaptiveIntervals({
      policy: {
        baseMs: setting('base', DEFAULT_POLICY.baseMs, 1000),
        maxMs: setting('max', DEFAULT_POLICY.maxMs, 1000),
        minMs: setting('min', DEFAULT_POLICY.minMs, 1000),
        lowCv: setting('lowCv', DEFAULT_POLICY.lowCv),
        highCv: setting('highCv', DEFAULT_POLICY.highCv),
        window: setting('window', DEFAULT_POLICY.window),
        deadbandW: setting('deadband', DEFAULT_POLICY.deadbandW),
        hold: setting('hold', DEFAULT_POLICY.hold),
      },
    });

    const stopMetrics = instrumentIntervals(metricsOf(RED), intervals);

    let shown = '';
    const showStatus = () => {
      const counts = intervals.counts();
      const key = `${counts.fast}/${counts.base}/${counts.slow}/${counts.learning}/${refusals.key}`;
      if (key === shown) return;
      shown = key;
      const decided = counts.fast + counts.base + counts.slow;
      if (decided > 0) {
        const text = counts.learning > 0 ? 'status.counts-learning' : 'status.counts';
        refusals.show(this, status.ok, t(text, { ...counts }), t);
      } else if (counts.learning > 0) {
        refusals.show(this, status.idle, t('status.learning', { learning: counts.learning }), t);
      } else refusals.show(this, status.idle, t('status.waiting'), t);
    };
    const refusals = new Refusals(showStatus);

    onInput(
      RED,
      this,
      (msg, send) => {
        const { payload } = msg;
        if (!Array.isArray(payload) && !isReading(payload)) {
          throw new Error(t('errors.not-a-reading'));
        }
        const items: unknown[] = Array.isArray(payload) ? payload : [payload];
        const changes: NodeMessage[] = [];
        let ignored = 0;
        for (const item of items) {
          if (!isReading(item)) {
            ignored += 1;
            continue;
          }
          // An answer from the pool's last poll repeats a value already counted.
          if (item.cached === true) continue;
          const change = intervals.observe(item.device_id, item.power_w);
          if (change !== null) {
            changes.push({
              topic: change.device_id,
              interval: change.interval_ms,
              payload: change,
            });
          }
        }
        if (ignored > 0) this.warn(t('warnings.ignored', { ignored, total: items.length }));
        if (changes.length > 0) send([changes]);
        showStatus();
      },
      refusals,
    );

    onClose(this, () => {
      stopMetrics();
      intervals.clear();
      status.clear(this);
    });

    showStatus();
  }
  RED.nodes.registerType('kasa-adaptive-interval', KasaAdaptiveInterval);
};
