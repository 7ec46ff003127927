import { format } from 'node:util';

import { Client } from 'tplink-smarthome-api';

import { errorMessage } from '../errors';
import { DEFAULT_DEVICE_PORT } from '../polling/device-entries';
import { silentLogger, systemTimers, type Logger, type Timers } from '../types';

/** One outlet of a strip as discovery lists it. */
export interface DiscoveredOutlet {
  /** 0-based position, as in a `host/N` device entry. */
  index: number;
  /** Full child id (short ids of older firmware are prefixed with the strip's deviceId). */
  id: string;
  alias: string | null;
}

/** A device that answered discovery. */
export interface DiscoveredDevice {
  device_id: string;
  alias: string | null;
  model: string | null;
  host: string;
  port: number;
  mac: string | null;
  has_emeter: boolean;
  /** Empty for single plugs. */
  outlets: DiscoveredOutlet[];
}

export interface DiscoverOptions {
  /** IPv4 broadcast (or unicast) address the request is sent to, on port 9999. */
  broadcast: string;
  /** How long to listen for answers, ms. */
  timeoutMs: number;
  /** The request is repeated this often while listening (UDP may drop it), ms. Default 1000. */
  resendMs?: number;
  /** Local address the UDP socket binds to; default all interfaces. */
  bindAddress?: string;
  timers?: Timers;
  logger?: Logger;
}

/** Bounds of the listening time the admin endpoint accepts, s. */
export const DISCOVERY_TIMEOUT_S = { min: 1, max: 10, default: 3 } as const;

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** True for a dotted-quad IPv4 address such as 192.168.1.255 or 127.255.255.255. */
export function isIpv4Address(text: string): boolean {
  return IPV4.test(text);
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: unknown): string | null =>
  typeof value === 'string' && value !== '' ? value : null;

/** Turns a device's get_sysinfo answer (and where it came from) into a DiscoveredDevice. */
export function describeDiscovered(sysInfo: unknown, host: string, port: number): DiscoveredDevice {
  const info = isObject(sysInfo) ? sysInfo : {};
  const deviceId = text(info.deviceId) ?? '';
  const feature = typeof info.feature === 'string' ? info.feature : '';
  const children = Array.isArray(info.children) ? info.children : [];
  return {
    device_id: deviceId,
    alias: text(info.alias),
    model: text(info.model),
    host,
    port,
    mac: text(info.mac) ?? text(info.mic_mac) ?? text(info.ethernet_mac),
    has_emeter: feature.split(':').includes('ENE'),
    outlets: children.filter(isObject).map((child, index) => {
      const id = text(child.id) ?? String(index).padStart(2, '0');
      return { index, id: id.length <= 2 ? `${deviceId}${id}` : id, alias: text(child.alias) };
    }),
  };
}

/** The kasa-poll device entry of a discovered device, or of one of its outlets. */
export function deviceEntry(
  device: Pick<DiscoveredDevice, 'host' | 'port'>,
  outlet?: number,
): string {
  const host = device.host.includes(':') ? `[${device.host}]` : device.host;
  const base = device.port === DEFAULT_DEVICE_PORT ? host : `${host}:${device.port}`;
  return outlet === undefined ? base : `${base}/${outlet}`;
}

/**
 * Asks every Kasa device reachable at `broadcast` (UDP port 9999) for its system info, listens
 * for `timeoutMs` and resolves with the devices that answered, ordered by address. Uses
 * tplink-smarthome-api's discovery; only plugs and strips are listed.
 */
export async function discoverDevices(options: DiscoverOptions): Promise<DiscoveredDevice[]> {
  if (!isIpv4Address(options.broadcast)) {
    throw new TypeError(`broadcast address "${options.broadcast}" is not an IPv4 address`);
  }
  const timers = options.timers ?? systemTimers;
  const logger = options.logger ?? silentLogger;
  const found = new Map<string, DiscoveredDevice>();
  const client = new Client({
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: (...args: unknown[]) => logger.warn(format(...args)),
      error: (...args: unknown[]) => logger.warn(format(...args)),
    },
  });

  return new Promise<DiscoveredDevice[]>((resolve, reject) => {
    let finished = false;
    const finish = (error?: unknown): void => {
      if (finished) return;
      finished = true;
      timers.clearTimeout(timer);
      client.stopDiscovery();
      // Still binding: stop as soon as it is bound (stopDiscovery only closes a bound socket).
      if (!client.isSocketBound) client.socket?.once('listening', () => client.stopDiscovery());
      client.removeAllListeners();
      if (error !== undefined) {
        reject(error instanceof Error ? error : new Error(errorMessage(error)));
        return;
      }
      resolve(
        [...found.values()].sort(
          (a, b) => a.host.localeCompare(b.host, 'en', { numeric: true }) || a.port - b.port,
        ),
      );
    };
    const timer = timers.setTimeout(() => finish(), options.timeoutMs);
    client.on('error', (error: unknown) => finish(error));
    client.on('device-new', (device: { host: string; port: number; sysInfo: unknown }) => {
      const described = describeDiscovered(device.sysInfo, device.host, device.port);
      found.set(deviceEntry(described), described);
    });
    client.startDiscovery({
      broadcast: options.broadcast,
      ...(options.bindAddress === undefined ? {} : { address: options.bindAddress }),
      discoveryInterval: options.resendMs ?? 1000,
      deviceTypes: ['plug'],
      breakoutChildren: false,
      // Real devices answer from port 9999; simulated ones may listen elsewhere.
      devicesUseDiscoveryPort: true,
    });
  });
}
