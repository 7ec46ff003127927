import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import {
  KasaError,
  TRANSIENT_CODES,
  errorMessage,
  isKasaError,
  type KasaErrorCode,
} from '../errors';
import { legacyTcpTransportFactory } from '../protocol/legacy-tcp';
import {
  deviceKey,
  type DeviceAddress,
  type Transport,
  type TransportFactory,
} from '../protocol/transport';
import {
  silentLogger,
  systemClock,
  systemTimers,
  type Clock,
  type Logger,
  type Timers,
} from '../types';

export interface DevicePoolOptions {
  /** Requests in flight at once over all devices; default 8. */
  maxInFlight: number;
  /** Limit for one attempt (connect, send, full reply), ms; default 5000. */
  requestTimeoutMs: number;
  /** Extra attempts after a transient failure (closed, bad reply, timeout); default 2. */
  retries: number;
  /** First retry waits this long, ms, doubling per retry, plus up to 20 % jitter; default 200. */
  retryBaseDelayMs: number;
  /** Wait after a device's first failed request, ms, doubling per further failure; default 5000. */
  offlineBackoffBaseMs: number;
  /** Longest wait between attempts at an offline device, ms; default 300000. */
  offlineBackoffMaxMs: number;
  /** Default: the legacy protocol on TCP (legacyTcpTransportFactory). */
  transportFactory: TransportFactory;
  /** Wall clock for health timestamps and backoff; default systemClock. */
  clock: Clock;
  /** Default: silentLogger. */
  logger: Logger;
  /** Default: the global setTimeout/clearTimeout. */
  timers: Timers;
  /** Source of retry jitter in [0, 1); default Math.random. */
  random: () => number;
}

/** What the pool knows about one device (one `host:port`). Timestamps are ms since the epoch. */
export interface DeviceHealth {
  key: string;
  host: string;
  port: number;
  /** null until the first request has finished. */
  online: boolean | null;
  consecutiveFailures: number;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  lastError: { code: KasaErrorCode; message: string } | null;
  /** Round trip of the last successful request, ms. */
  latencyMs: number | null;
  /** While offline: requests before this time fail at once with DEVICE_BACKING_OFF. */
  nextAttemptAt: number | null;
}

/** Payload of the pool's 'request' event, emitted once per settled request. */
export interface RequestEvent {
  key: string;
  /** From the request's start (including queueing and retries) to its end, ms. */
  latencyMs: number;
  ok: boolean;
  /** The error's code when it failed with a KasaError. */
  code?: KasaErrorCode;
}

export interface PoolStats {
  /** Requests on the wire right now. */
  inFlight: number;
  /** Requests waiting for their device or for a global slot. */
  queued: number;
  /** Retries made so far. */
  retries: number;
  /** TCP connections opened so far, over all devices. */
  connectionsOpened: number;
  /** Requests settled so far (answered or failed). */
  requests: number;
  /** Requests that failed so far (including DEVICE_BACKING_OFF and POOL_CLOSED). */
  failures: number;
}

interface Job {
  payload: Record<string, unknown>;
  resolve: (reply: Record<string, unknown>) => void;
  reject: (error: Error) => void;
  startedAt: number;
}

interface DeviceState {
  health: DeviceHealth;
  address: DeviceAddress;
  transport: Transport | null;
  queue: Job[];
  /** The device's queue is being worked through. */
  busy: boolean;
  /** A job of this device is being worked on (waiting for a slot, on the wire, or between tries). */
  active: boolean;
  /** The last failed request's error, whole: `health.lastError` is its plain copy. */
  lastFailure: KasaError | null;
}

interface Sleep {
  handle: unknown;
  resolve: () => void;
  reject: (error: Error) => void;
}

interface SlotWaiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/** Events of DevicePool with their arguments. */
export type DevicePoolEvents = {
  health: [health: DeviceHealth];
  request: [event: RequestEvent];
};

/**
 * The shared device-connection layer: one request in flight per device (a FIFO per
 * `host:port`; strip outlets share their strip's), at most `maxInFlight` over all devices,
 * retries of transient failures, and exponential backoff for offline devices so a dead plug
 * costs one attempt per backoff window instead of a timeout per poll.
 *
 * Events: 'health' (DeviceHealth) when a device's online state changes; 'request'
 * (RequestEvent) after every request. A reply with a non-zero err_code is still a reply:
 * interpreting it is the caller's business.
 */
export class DevicePool extends EventEmitter<DevicePoolEvents> {
  private readonly options: DevicePoolOptions;
  private readonly devices = new Map<string, DeviceState>();
  private readonly slotWaiters: SlotWaiter[] = [];
  private readonly sleeps = new Set<Sleep>();
  private inFlight = 0;
  private queuedJobs = 0;
  private retryCount = 0;
  private requestCount = 0;
  private failureCount = 0;
  /** Connections of transports already dropped, so the total never goes down. */
  private retiredConnections = 0;
  private closing: Promise<void> | null = null;

  constructor(options: Partial<DevicePoolOptions> = {}) {
    super();
    this.options = {
      maxInFlight: Math.max(1, options.maxInFlight ?? 8),
      requestTimeoutMs: options.requestTimeoutMs ?? 5000,
      retries: Math.max(0, options.retries ?? 2),
      retryBaseDelayMs: options.retryBaseDelayMs ?? 200,
      offlineBackoffBaseMs: options.offlineBackoffBaseMs ?? 5000,
      offlineBackoffMaxMs: options.offlineBackoffMaxMs ?? 300_000,
      transportFactory: options.transportFactory ?? legacyTcpTransportFactory,
      clock: options.clock ?? systemClock,
      logger: options.logger ?? silentLogger,
      timers: options.timers ?? systemTimers,
      random: options.random ?? Math.random,
    };
  }

  /**
   * Sends one request to the device at `address` and resolves with its reply object.
   * Rejects with a KasaError: the transport's codes after retries, DEVICE_BACKING_OFF while
   * the device is offline and its next attempt is not due, POOL_CLOSED once closed.
   */
  request(
    address: DeviceAddress,
    payload: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const startedAt = performance.now();
      if (this.closing !== null) {
        this.settle(deviceKey(address), startedAt, poolClosed(), reject);
        return;
      }
      const device = this.deviceOf(address);
      const backingOff = this.backingOff(device);
      if (backingOff !== null) {
        this.settle(device.health.key, startedAt, backingOff, reject);
        return;
      }
      device.queue.push({ payload, resolve, reject, startedAt });
      this.queuedJobs += 1;
      if (!device.busy) {
        this.drain(device).catch((error: unknown) => {
          this.options.logger.error(
            `device queue ${device.health.key} failed: ${errorMessage(error)}`,
          );
        });
      }
    });
  }

  /** Health of the device at `address`, or undefined if it was never asked. */
  health(address: DeviceAddress): DeviceHealth | undefined {
    const device = this.devices.get(deviceKey(address));
    return device === undefined ? undefined : copyHealth(device.health);
  }

  /** Health of every device the pool knows, in first-use order. */
  snapshot(): DeviceHealth[] {
    return [...this.devices.values()].map((device) => copyHealth(device.health));
  }

  stats(): PoolStats {
    let connectionsOpened = this.retiredConnections;
    for (const device of this.devices.values()) {
      connectionsOpened += device.transport?.connectionsOpened ?? 0;
    }
    return {
      inFlight: this.inFlight,
      queued: this.queuedJobs + this.slotWaiters.length,
      retries: this.retryCount,
      connectionsOpened,
      requests: this.requestCount,
      failures: this.failureCount,
    };
  }

  /**
   * Closes the connection to the device at `address`; the next request opens a new one.
   * A request on the wire fails with POOL_CLOSED; queued ones and the health record stay.
   * @param options.forget - also forget the device's health (when it left the configuration)
   */
  closeDevice(address: DeviceAddress, options: { forget?: boolean } = {}): void {
    const key = deviceKey(address);
    const device = this.devices.get(key);
    if (device === undefined) return;
    this.dropTransport(device);
    if (options.forget === true && !device.active && device.queue.length === 0) {
      this.devices.delete(key);
    }
  }

  /**
   * Rejects queued requests with POOL_CLOSED, closes every connection and cancels every
   * timer. Idempotent; later requests reject with POOL_CLOSED.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = Promise.resolve();
    for (const sleep of this.sleeps) {
      this.options.timers.clearTimeout(sleep.handle);
      sleep.reject(poolClosed());
    }
    this.sleeps.clear();
    for (const waiter of this.slotWaiters.splice(0)) waiter.reject(poolClosed());
    for (const device of this.devices.values()) {
      for (const job of device.queue.splice(0)) {
        this.queuedJobs -= 1;
        this.settle(device.health.key, job.startedAt, poolClosed(), job.reject);
      }
      this.dropTransport(device);
    }
    return this.closing;
  }

  private deviceOf(address: DeviceAddress): DeviceState {
    const key = deviceKey(address);
    let device = this.devices.get(key);
    if (device === undefined) {
      device = {
        health: {
          key,
          host: address.host,
          port: address.port,
          online: null,
          consecutiveFailures: 0,
          lastSuccessAt: null,
          lastFailureAt: null,
          lastError: null,
          latencyMs: null,
          nextAttemptAt: null,
        },
        address: { host: address.host, port: address.port },
        transport: null,
        queue: [],
        busy: false,
        active: false,
        lastFailure: null,
      };
      this.devices.set(key, device);
    }
    return device;
  }

  private backingOff(device: DeviceState): KasaError | null {
    const { nextAttemptAt, key } = device.health;
    if (nextAttemptAt === null) return null;
    const now = this.options.clock.now();
    if (now >= nextAttemptAt) return null;
    return new KasaError(
      'DEVICE_BACKING_OFF',
      `${key} is offline (${device.lastFailure?.code ?? 'failed'}); next attempt in ${Math.ceil(
        (nextAttemptAt - now) / 1000,
      )} s`,
      { host: device.address.host, port: device.address.port, nextAttemptAt },
      // The failure that started the outage, so a newcomer can name it rather than the wait.
      { cause: device.lastFailure ?? undefined },
    );
  }

  /** Works through one device's queue, one job at a time. */
  private async drain(device: DeviceState): Promise<void> {
    device.busy = true;
    try {
      for (;;) {
        const job = device.queue.shift();
        if (job === undefined) break;
        this.queuedJobs -= 1;
        device.active = true;
        const outcome = await this.run(device, job);
        // Cleared before the caller hears back, so its reaction (closeDevice) sees the device idle.
        device.active = false;
        if (outcome instanceof Error) {
          this.settle(device.health.key, job.startedAt, outcome, job.reject);
        } else {
          this.requestCount += 1;
          const latencyMs = performance.now() - job.startedAt;
          this.notify('request', { key: device.health.key, latencyMs, ok: true });
          job.resolve(outcome);
        }
      }
    } finally {
      device.busy = false;
    }
  }

  /** One job with its retries; resolves with the reply or the error to reject with. */
  private async run(device: DeviceState, job: Job): Promise<Record<string, unknown> | Error> {
    // Jobs queued before the device went offline fail fast instead of each timing out.
    const backingOff = this.backingOff(device);
    if (backingOff !== null) return backingOff;
    let attempt = 0;
    for (;;) {
      let reply: Record<string, unknown>;
      let latencyMs: number;
      try {
        if (this.inFlight < this.options.maxInFlight) this.inFlight += 1;
        else await this.waitForSlot();
        try {
          const transport = device.transport ?? this.openTransport(device);
          const sentAt = performance.now();
          reply = await transport.request(job.payload, this.options.requestTimeoutMs);
          latencyMs = performance.now() - sentAt;
        } finally {
          this.releaseSlot();
        }
      } catch (error) {
        const code = isKasaError(error) ? error.code : undefined;
        // Our own doing (close or closeDevice), not the device's fault.
        if (code === 'POOL_CLOSED' || this.closing !== null) return poolClosed();
        if (code !== undefined && TRANSIENT_CODES.has(code) && attempt < this.options.retries) {
          const jitter = 1 + 0.2 * this.options.random();
          const delay = Math.round(this.options.retryBaseDelayMs * 2 ** attempt * jitter);
          attempt += 1;
          this.retryCount += 1;
          try {
            await this.sleep(delay);
          } catch (closed) {
            return closed as Error;
          }
          continue;
        }
        // Only the device's failures count against it, not e.g. an unserialisable payload.
        if (isKasaError(error)) this.recordFailure(device, error);
        return error instanceof Error ? error : new Error(String(error));
      }
      this.recordSuccess(device, latencyMs);
      return reply;
    }
  }

  private settle(
    key: string,
    startedAt: number,
    error: Error,
    reject: (error: Error) => void,
  ): void {
    this.requestCount += 1;
    this.failureCount += 1;
    const latencyMs = performance.now() - startedAt;
    this.notify(
      'request',
      isKasaError(error)
        ? { key, latencyMs, ok: false, code: error.code }
        : { key, latencyMs, ok: false },
    );
    reject(error);
  }

  private recordSuccess(device: DeviceState, latencyMs: number): void {
    const health = device.health;
    const changed = health.online !== true;
    health.online = true;
    health.consecutiveFailures = 0;
    health.lastSuccessAt = this.options.clock.now();
    health.latencyMs = latencyMs;
    health.nextAttemptAt = null;
    if (changed) {
      this.options.logger.debug(`${health.key} online`);
      this.notify('health', copyHealth(health));
    }
  }

  private recordFailure(device: DeviceState, error: KasaError): void {
    const health = device.health;
    const changed = health.online !== false;
    const now = this.options.clock.now();
    health.online = false;
    health.consecutiveFailures += 1;
    health.lastFailureAt = now;
    health.lastError = { code: error.code, message: error.message };
    device.lastFailure = error;
    const { offlineBackoffBaseMs, offlineBackoffMaxMs } = this.options;
    const wait = Math.min(
      offlineBackoffMaxMs,
      offlineBackoffBaseMs * 2 ** Math.min(health.consecutiveFailures - 1, 30),
    );
    health.nextAttemptAt = now + wait;
    if (changed) {
      this.options.logger.debug(`${health.key} offline: ${health.lastError.message}`);
      this.notify('health', copyHealth(health));
    }
  }

  /** A throwing listener must not leave a request unsettled or escape as a rejection. */
  private notify<K extends keyof DevicePoolEvents>(event: K, arg: DevicePoolEvents[K][0]): void {
    try {
      (this as EventEmitter).emit(event, arg);
    } catch (error) {
      this.options.logger.warn(`'${event}' listener failed: ${errorMessage(error)}`);
    }
  }

  private openTransport(device: DeviceState): Transport {
    const transport = this.options.transportFactory(device.address);
    device.transport = transport;
    return transport;
  }

  private dropTransport(device: DeviceState): void {
    const transport = device.transport;
    if (transport === null) return;
    device.transport = null;
    this.retiredConnections += transport.connectionsOpened;
    transport.close();
  }

  private waitForSlot(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.slotWaiters.push({ resolve, reject });
    });
  }

  /** Hands the slot straight to the next waiting device, so the count never dips and races. */
  private releaseSlot(): void {
    const waiter = this.slotWaiters.shift();
    if (waiter !== undefined) waiter.resolve();
    else this.inFlight -= 1;
  }

  private sleep(ms: number): Promise<void> {
    if (this.closing !== null) return Promise.reject(poolClosed());
    return new Promise((resolve, reject) => {
      const sleep: Sleep = { handle: undefined, resolve, reject };
      sleep.handle = this.options.timers.setTimeout(() => {
        this.sleeps.delete(sleep);
        resolve();
      }, ms);
      this.sleeps.add(sleep);
    });
  }
}

function copyHealth(health: DeviceHealth): DeviceHealth {
  return { ...health, lastError: health.lastError === null ? null : { ...health.lastError } };
}

function poolClosed(): KasaError {
  return new KasaError('POOL_CLOSED', 'device pool closed');
}
