import { KasaError } from '../errors';

/** The legacy protocol's TCP port. */
export const DEFAULT_DEVICE_PORT = 9999;

/** One entry of kasa-poll's device list: a plug, a whole strip, or one outlet of a strip. */
export interface PollTarget {
  host: string;
  port: number;
  /** 0-based outlet index of a strip (`host/N`), or null for the whole device. */
  outlet: number | null;
  /** The entry as the user wrote it, normalised: `host:port` or `host:port/N`. */
  key: string;
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const ENTRY = /^(\[[0-9A-Fa-f:.]+\]|[^:/\s]+)(?::(\d{1,5}))?(?:\/(\d{1,2}))?$/;

/** `host:port` of a target, the key the device pool queues by. */
export function addressKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses one `host[:port][/outlet]` entry; throws BAD_DEVICE_ENTRY saying what is wrong. */
export function parseDeviceEntry(entry: string): PollTarget {
  const trimmed = entry.trim();
  const match = ENTRY.exec(trimmed);
  const fail = (why: string): never => {
    throw new KasaError('BAD_DEVICE_ENTRY', `"${trimmed}" is not host[:port][/outlet]: ${why}`, {
      entry: trimmed,
      reason: why,
    });
  };
  if (match === null) return fail('expected e.g. 192.0.2.10, plug.local:9999 or 192.0.2.11/3');
  const [, rawHost = '', rawPort, rawOutlet] = match;
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  const looksNumeric = /^[\d.]+$/.test(host);
  if (!rawHost.startsWith('[') && (looksNumeric ? !IPV4.test(host) : !HOSTNAME.test(host))) {
    fail(`"${host}" is not an IPv4 address or host name`);
  }
  const port = rawPort === undefined ? DEFAULT_DEVICE_PORT : Number(rawPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    fail(`port ${rawPort ?? ''} is not 1-65535`);
  const outlet = rawOutlet === undefined ? null : Number(rawOutlet);
  const base = addressKey(host, port);
  return { host, port, outlet, key: outlet === null ? base : `${base}/${outlet}` };
}

/**
 * Parses kasa-poll's device list: entries one per line or comma-separated; blank lines and
 * `#` comments are ignored. Every malformed entry is reported, the good ones are kept.
 */
export function parseDeviceList(list: string): { targets: PollTarget[]; errors: KasaError[] } {
  const targets: PollTarget[] = [];
  const errors: KasaError[] = [];
  const seen = new Set<string>();
  for (const line of list.split(/\r?\n/)) {
    const content = line.replace(/#.*$/, '');
    for (const entry of content.split(',')) {
      if (entry.trim() === '') continue;
      try {
        const target = parseDeviceEntry(entry);
        if (!seen.has(target.key)) targets.push(target);
        seen.add(target.key);
      } catch (error) {
        if (error instanceof KasaError) errors.push(error);
        else throw error;
      }
    }
  }
  return { targets, errors };
}
