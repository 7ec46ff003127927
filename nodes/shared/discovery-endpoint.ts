import type { Request, Response } from 'express';

import {
  deviceEntry,
  DISCOVERY_TIMEOUT_S,
  discoverDevices,
  isIpv4Address,
} from '../../lib/discovery/discover';
import { errorMessage } from '../../lib/errors';
import { translator } from './i18n';
import type { NodeAPI } from './types';

/** The admin route kasa-poll's Discover button calls (relative to httpAdminRoot). */
export const DISCOVERY_PATH = '/kasa-monitor/discover';
/** Discoveries running at once; more get 429 rather than more sockets. */
const MAX_RUNNING = 2;

/**
 * Serves `GET /kasa-monitor/discover?broadcast=<IPv4>&timeout=<s>` on the admin API for users
 * with `kasa-device-pool.read`: listens for Kasa devices for `timeout` seconds (1-10, default 3)
 * and answers `{ broadcast, timeout, devices }`, each device with its device entry and its outlets'.
 */
export function serveDiscovery(RED: NodeAPI): void {
  const t = translator(RED, 'kasa-device-pool');
  let running = 0;
  RED.httpAdmin.get(
    DISCOVERY_PATH,
    RED.auth.needsPermission('kasa-device-pool.read'),
    (req: Request, res: Response) => {
      const broadcast = typeof req.query.broadcast === 'string' ? req.query.broadcast.trim() : '';
      if (!isIpv4Address(broadcast)) {
        res.status(400).json({ error: t('discovery.bad-broadcast', { value: broadcast }) });
        return;
      }
      const rawTimeout = typeof req.query.timeout === 'string' ? req.query.timeout.trim() : '';
      const timeout = rawTimeout === '' ? DISCOVERY_TIMEOUT_S.default : Number(rawTimeout);
      if (
        !Number.isFinite(timeout) ||
        timeout < DISCOVERY_TIMEOUT_S.min ||
        timeout > DISCOVERY_TIMEOUT_S.max
      ) {
        res.status(400).json({
          error: t('discovery.bad-timeout', {
            value: rawTimeout,
            min: DISCOVERY_TIMEOUT_S.min,
            max: DISCOVERY_TIMEOUT_S.max,
          }),
        });
        return;
      }
      if (running >= MAX_RUNNING) {
        res.status(429).json({ error: t('discovery.busy') });
        return;
      }
      running += 1;
      discoverDevices({
        broadcast,
        timeoutMs: timeout * 1000,
        logger: {
          debug: () => undefined,
          info: () => undefined,
          warn: (message) => RED.log.warn(message),
          error: (message) => RED.log.warn(message),
        },
      })
        .then((devices) => {
          res.json({
            broadcast,
            timeout,
            devices: devices.map((device) => ({
              ...device,
              entry: deviceEntry(device),
              outlets: device.outlets.map((outlet) => ({
                ...outlet,
                entry: deviceEntry(device, outlet.index),
              })),
            })),
          });
        })
        .catch((error: unknown) => {
          res
            .status(500)
            .json({ error: t('discovery.failed', { broadcast, cause: errorMessage(error) }) });
        })
        .finally(() => {
          running -= 1;
        });
    },
  );
}
