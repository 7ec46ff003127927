import { join } from 'node:path';

import { serveDiscovery } from './shared/discovery-endpoint';
import { instrumentPool } from '../lib/metrics/instrument';
import { sharedPools } from '../lib/pool/shared-pool';
import { systemClock } from '../lib/types';
import type { DevicePoolNode } from './shared/device-pool-node';
import type { NodeAPI, NodeDef } from './shared/types';
import { onClose } from './shared/lifecycle';
import { nodeLogger } from './shared/logger';
import { kasaMonitorSettings, numberSetting, type NumberRule } from './shared/settings';
import { metricsOf } from './shared/metrics';

interface DevicePoolDef extends NodeDef {
  maxInFlight: number | string;
  timeout: number | string;
  retries: number | string;
  maxPowerW: number | string;
  minPollInterval?: number | string;
  broadcast?: string;
  discoveryTimeout?: number | string;
}

export = function (RED: NodeAPI): void {
  function KasaDevicePool(this: DevicePoolNode, def: DevicePoolDef): void {
    RED.nodes.createNode(this, def);
    const userDir = (RED.settings as { userDir?: string }).userDir;
    const setting = (name: keyof DevicePoolDef, rule: NumberRule) =>
      numberSetting(RED, this, name, def[name], rule);
    this.shared = sharedPools.acquire(this.id, {
      pool: {
        maxInFlight: setting('maxInFlight', { fallback: 8, min: 1, max: 1000, integer: true }),
        requestTimeoutMs: setting('timeout', { fallback: 5, min: 0.1, max: 600 }) * 1000,
        retries: setting('retries', { fallback: 2, min: 0, max: 10, integer: true }),
      },
      limits: {
        maxPowerW: setting('maxPowerW', { fallback: 4000, min: 1, max: 100_000 }),
        maxVoltageV: 300,
        maxCurrentA: 20,
      },
      minPollIntervalMs: setting('minPollInterval', { fallback: 0, min: 0, max: 86_400 }) * 1000,
      baselinePath:
        userDir === undefined
          ? null
          : join(userDir, 'kasa-monitor', `energy-baselines-${this.id}.json`),
      clock: systemClock,
      logger: nodeLogger(this),
    });
    this.register = (user) => this.shared.register(user.id);
    this.deregister = (user, removed) => this.shared.deregister(user.id, removed);
    const stopMetrics = instrumentPool(metricsOf(RED), this.shared.pool);
    onClose(this, (removed) => {
      stopMetrics(removed);
      return sharedPools.release(this.id, removed, kasaMonitorSettings(RED).poolLingerMs);
    });
  }
  RED.nodes.registerType('kasa-device-pool', KasaDevicePool);
  serveDiscovery(RED);
};
