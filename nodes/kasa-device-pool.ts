import { join } from 'node:path';

import { instrumentPool } from '../lib/metrics/instrument';
import { sharedPools } from '../lib/pool/shared-pool';
import { systemClock } from '../lib/types';
import type { DevicePoolNode } from './shared/device-pool-node';
import type { NodeAPI, NodeDef } from './shared/types';
import { onClose } from './shared/lifecycle';
import { nodeLogger } from './shared/logger';
import { metricsOf } from './shared/metrics';

interface DevicePoolDef extends NodeDef {
  maxInFlight: number | string;
  timeout: number | string;
  retries: number | string;
  maxPowerW: number | string;
  minPollInterval?: number | string;
}

const numberOr = (value: number | string | undefined, fallback: number): number => {
  const parsed = typeof value === 'number' ? value : Number.parseFloat(value ?? '');
  return Number.isFinite(parsed) && parsed >= 0 ? parsed : fallback;
};

export = function (RED: NodeAPI): void {
  function KasaDevicePool(this: DevicePoolNode, def: DevicePoolDef): void {
    RED.nodes.createNode(this, def);
    const settings = RED.settings as { userDir?: string; kasaMonitor?: { poolLingerMs?: number } };
    const userDir = settings.userDir;
    this.shared = sharedPools.acquire(this.id, {
      pool: {
        maxInFlight: Math.max(1, Math.round(numberOr(def.maxInFlight, 8))),
        requestTimeoutMs: Math.max(100, numberOr(def.timeout, 5) * 1000),
        retries: Math.round(numberOr(def.retries, 2)),
      },
      limits: { maxPowerW: numberOr(def.maxPowerW, 4000), maxVoltageV: 300, maxCurrentA: 20 },
      minPollIntervalMs: numberOr(def.minPollInterval, 0) * 1000,
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
      return sharedPools.release(this.id, removed, settings.kasaMonitor?.poolLingerMs);
    });
  }
  RED.nodes.registerType('kasa-device-pool', KasaDevicePool);
};
