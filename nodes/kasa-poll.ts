import { parseDeviceList, type PollTarget } from '../lib/polling/device-entries';
import { MAX_INTERVAL_MS, MIN_INTERVAL_MS } from '../lib/polling/poll-scheduler';
import { Poller, type PollCycle } from '../lib/polling/poller';
import type { DevicePoolNode } from './shared/device-pool-node';
import { translator } from './shared/i18n';
import { describeError } from './shared/errors';
import {
  afterFlowStart,
  onClose,
  onInput,
  outOfService,
  reportSetupError,
} from './shared/lifecycle';
import { numberSetting } from './shared/settings';
import { Refusals, status } from './shared/status';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, SendFunction } from './shared/types';

interface KasaPollDef extends NodeDef {
  pool: string;
  /** Entries one per line or comma-separated; flows written by hand may hold a list. */
  devices?: unknown;
  interval: number | string;
  output: 'reading' | 'cycle';
}

interface PollRequest extends NodeMessageInFlow {
  interval?: unknown;
}

/** The device list as the text the editor stores; a list of entries joins into it. */
function deviceListText(devices: unknown): string | Error {
  if (devices === undefined || devices === null) return '';
  if (typeof devices === 'string') return devices;
  if (Array.isArray(devices) && devices.every((entry) => typeof entry === 'string')) {
    return devices.join('\n');
  }
  return new Error(JSON.stringify(devices));
}

export = function (RED: NodeAPI): void {
  function KasaPoll(this: Node, def: KasaPollDef): void {
    RED.nodes.createNode(this, def);
    const t = translator(RED, 'kasa-poll');
    const poolNode = RED.nodes.getNode(def.pool) as DevicePoolNode | null;
    if (poolNode === null) {
      outOfService(this, t('status.no-pool'), t('errors.no-pool'), t);
      return;
    }
    const listText = deviceListText(def.devices);
    if (listText instanceof Error) {
      reportSetupError(this, t('errors.bad-device-list', { value: listText.message }));
    }
    const { targets, errors } = parseDeviceList(listText instanceof Error ? '' : listText);
    for (const error of errors) reportSetupError(this, describeError(RED, error));
    if (targets.length === 0) {
      outOfService(this, t('status.no-devices'), t('errors.no-devices'), t);
      return;
    }
    const intervalS = numberSetting(RED, this, 'interval', def.interval, {
      fallback: 30,
      min: 0,
      max: MAX_INTERVAL_MS / 1000,
    });
    const poller = new Poller<SendFunction>({
      shared: poolNode.shared,
      consumer: this.id,
      targets,
      intervalMs:
        Number.isFinite(intervalS) && intervalS > 0
          ? Math.max(MIN_INTERVAL_MS, intervalS * 1000)
          : 0,
    });
    poolNode.register(this);

    let shownCounts = '';
    const showStatus = () => {
      const counts = poller.counts();
      // Cycles repeat every few seconds; the status changes far less often.
      const key = `${counts.ok}/${counts.failing}/${refusals.key}`;
      if (key === shownCounts) return;
      shownCounts = key;
      const bad = errors.length;
      const text =
        bad === 0
          ? t('status.counts', { ok: counts.ok, failing: counts.failing })
          : t('status.counts-bad-entries', { ok: counts.ok, failing: counts.failing, bad });
      const show =
        counts.failing === 0 && bad === 0
          ? counts.ok > 0
            ? status.ok
            : status.idle
          : counts.ok > 0
            ? status.degraded
            : status.error;
      refusals.show(this, show, text, t);
    };
    const refusals = new Refusals(showStatus);

    const deliver = (cycle: PollCycle, send: SendFunction) => {
      // Device rows ride along when new or changed, so the store records meterless devices too;
      // so do the days of an outage the devices filled from their own statistics.
      const devices = {
        ...(cycle.devices.length > 0 ? { devices: cycle.devices } : {}),
        ...(cycle.daily.length > 0 ? { daily: cycle.daily } : {}),
      };
      if (def.output === 'cycle' || cycle.readings.length === 0) {
        if (cycle.readings.length > 0 || cycle.devices.length > 0) {
          send({ topic: 'kasa-poll', payload: cycle.readings, ...devices });
        }
        return;
      }
      // One send for the whole cycle: Node-RED delivers the messages one by one all the same.
      const messages = cycle.readings.map((reading, index) => ({
        topic: reading.device_id,
        payload: reading,
        ...(index === 0 ? devices : {}),
      }));
      send([messages]);
    };

    poller.on('cycle', (cycle, send) => {
      deliver(cycle, send ?? ((msg) => this.send(msg)));
      showStatus();
    });
    poller.on('failing', (target, error) => {
      const text = t('errors.device-failing', {
        device: target.key,
        cause: describeError(RED, error),
      });
      this.error(text, {
        topic: target.key,
        payload: { device: target.key, code: error.code, error: text },
      });
    });
    poller.on('recovered', (target) => this.log(t('log.device-recovered', { device: target.key })));
    poller.on('problem', (target, error) =>
      this.warn(`${target.key}: ${describeError(RED, error)}`),
    );
    poller.on('notice', (target, notice) => {
      const text = t(`log.${notice.kind}`, {
        device: notice.device_id,
        previous: notice.previous_device_id,
        target: target.key,
        days: notice.days,
      });
      if (notice.kind === 'identity-changed') this.warn(text);
      else this.log(text);
    });

    onInput(
      RED,
      this,
      async (msg: PollRequest, send) => {
        const name = msg.topic ?? (msg.payload as { host?: unknown } | undefined)?.host;
        let chosen: PollTarget[] = targets;
        if (typeof name === 'string' && name !== '') {
          chosen = poller.resolve(name);
          if (chosen.length === 0) throw new Error(t('errors.unknown-device', { device: name }));
        }
        if (msg.interval !== undefined) {
          const interval = Number(msg.interval);
          if (
            !Number.isFinite(interval) ||
            (interval !== 0 && (interval < MIN_INTERVAL_MS || interval > MAX_INTERVAL_MS))
          ) {
            throw new Error(t('errors.bad-interval', { value: JSON.stringify(msg.interval) }));
          }
          if (typeof name === 'string' && name !== '') poller.setIntervalOf(name, interval);
          else poller.setInterval(interval);
          return;
        }
        await poller.pollNow(chosen, send);
      },
      refusals,
    );

    onClose(this, async (removed) => {
      await poller.stop();
      poller.removeAllListeners();
      poolNode.deregister(this, removed);
      status.clear(this);
    });

    if (intervalS === 0) status.idle(this, t('status.on-input'));
    else status.connecting(this, t('status.starting'));
    // A device that fails its first poll is reported as an error, which a Catch node must get.
    afterFlowStart(this, () => poller.start());
  }
  RED.nodes.registerType('kasa-poll', KasaPoll);
};
