/**
 * The one interface every device transport implements: the legacy XOR protocol on TCP 9999
 * today, KLAP/AES sessions later. The pool only ever sees this, so a transport owns its
 * connection handling, framing, encryption and any session state.
 */

/** Where a device listens. `port` is 9999 for the legacy protocol. */
export interface DeviceAddress {
  host: string;
  port: number;
}

export interface Transport {
  /**
   * Sends one JSON request, resolves with the parsed JSON reply object.
   * Rejects with a KasaError: DEVICE_TIMEOUT, DEVICE_UNREACHABLE, DEVICE_CLOSED,
   * DEVICE_BAD_REPLY, or POOL_CLOSED after `close()`.
   * @param timeoutMs - limit for the whole round trip (connect, send, full reply), ms
   */
  request(payload: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>>;
  /** Destroys any open connection; idempotent; later requests reject with POOL_CLOSED. */
  close(): void;
  /** TCP connections opened so far (for metrics and tests). */
  readonly connectionsOpened: number;
}

export type TransportFactory = (address: DeviceAddress) => Transport;

/** The pool's key of a device: strips are one device, so their outlets share it. */
export function deviceKey(address: DeviceAddress): string {
  return `${address.host}:${address.port}`;
}
