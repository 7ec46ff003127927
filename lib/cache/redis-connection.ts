import { EventEmitter } from 'node:events';

import Redis from 'ioredis';

import { errorMessage, KasaError } from '../errors';
import { type Clock, systemClock, systemTimers, type Timers } from '../types';
import type { CacheEntry, SecondLevel, SecondLevelSource, SecondLevelState } from './types';

/** Default key prefix: keys are `<prefix><cache name>:<key>`. */
export const DEFAULT_PREFIX = 'kasa:';
/** Default limit on one command, ms: past it Redis counts as down, so a slow Redis never stalls a flow. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 250;
/** Default limit on making a connection, ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
/** Default longest pause between reconnection attempts, ms (they start at 100 ms and double). */
export const DEFAULT_MAX_RECONNECT_DELAY_MS = 2000;
/** Default pause between checks of a connected Redis that stopped answering in time, ms. */
export const DEFAULT_PROBE_INTERVAL_MS = 1000;

export interface RedisConnectionOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://` for TLS. */
  url: string;
  /** Override the URL's credentials. */
  username?: string;
  password?: string;
  /** Default `kasa:`. */
  prefix?: string;
  /** Default 250 ms. */
  commandTimeoutMs?: number;
  /** Default 2,000 ms. */
  connectTimeoutMs?: number;
  /** Default 2,000 ms. */
  maxReconnectDelayMs?: number;
  /** Default 1,000 ms. */
  probeIntervalMs?: number;
  clock?: Clock;
  timers?: Timers;
}

interface RedisConnectionEvents {
  /** Every change of state; `cause` says why Redis is down. */
  state: [state: SecondLevelState, cause: KasaError | null];
  /** Redis answered a command with an error (the connection itself is fine). */
  'reply-error': [error: KasaError];
}

/**
 * One Redis client (ioredis) shared by every cache that uses it. It connects on first use,
 * reconnects forever with a bounded pause, never queues commands while disconnected and gives up
 * on a command after the command timeout, so callers can always fall back to memory at once. A
 * Redis that is connected but too slow counts as down until a background PING (at most one per
 * probe interval, started by traffic: no timer runs while idle) answers in time again.
 */
export class RedisConnection
  extends EventEmitter<RedisConnectionEvents>
  implements SecondLevelSource
{
  /** The URL without credentials, for logs and status. */
  readonly displayUrl: string;
  readonly prefix: string;
  private currentState: SecondLevelState = 'idle';
  private readonly client: Redis;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly commandTimeoutMs: number;
  private readonly probeIntervalMs: number;
  private readonly waiters = new Set<(ready: boolean) => void>();
  private nextProbeAt = 0;
  private probing = false;
  /** Successful commands so far: proof of life when a command times out. */
  private replies = 0;

  /** @throws KasaError `CACHE_BAD_SETTING` for a URL that is not redis:// or rediss://. */
  constructor(options: RedisConnectionOptions) {
    super();
    // Every cache node using this connection listens to its state.
    this.setMaxListeners(0);
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      url = new URL('invalid:');
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new KasaError('CACHE_BAD_SETTING', `not a redis:// URL: ${options.url}`, {
        setting: 'url',
        value: options.url,
      });
    }
    url.username = '';
    url.password = '';
    this.displayUrl = url.toString();
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.probeIntervalMs = options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    const maxDelay = options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS;
    this.client = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.commandTimeoutMs,
      connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      retryStrategy: (times) => Math.min(maxDelay, 50 * 2 ** Math.min(times, 16)),
      // RESP2 works with every Redis a user may run and saves the HELLO round trip.
      protocol: 2,
      maintNotifications: 'disabled',
      ...(options.username ? { username: options.username } : {}),
      ...(options.password ? { password: options.password } : {}),
    });
    this.client.on('ready', () => this.toState('ready', null));
    // ioredis repeats connection errors on every reconnection attempt; the state changes once.
    this.client.on('error', (error: unknown) => this.toState('down', this.unavailable(error)));
    this.client.on('close', () => {
      if (this.currentState === 'ready') {
        this.toState('down', this.unavailable('the connection was closed'));
      }
    });
  }

  get state(): SecondLevelState {
    return this.currentState;
  }

  /** Starts connecting (if not yet) and returns the level of cache `name`. */
  namespace(name: string): SecondLevel {
    this.connect();
    const prefix = `${this.prefix}${name}:`;
    const state = () => this.currentState;
    return {
      get state() {
        return state();
      },
      usable: () => this.usable(),
      get: (key) => this.getEntry(prefix + key),
      set: (key, entry) => this.setEntry(prefix + key, entry),
      delete: (key) => this.run(async () => (await this.client.del(prefix + key)) > 0),
      clear: () => this.clearPrefix(prefix),
    };
  }

  /** Quits the client (disconnects if quitting is not answered in time). Idempotent. */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    const connected = this.client.status === 'ready';
    this.toState('closed', null);
    if (connected) {
      try {
        await this.client.quit();
      } catch {
        // Not answered in time: the disconnect below ends it anyway.
      }
    }
    this.client.disconnect();
  }

  private connect(): void {
    if (this.currentState !== 'idle') return;
    this.toState('connecting', null);
    // Failures arrive as 'error' events and the client keeps retrying.
    this.client.connect().catch(() => undefined);
  }

  private usable(): boolean | Promise<boolean> {
    switch (this.currentState) {
      case 'ready':
        return true;
      case 'idle':
        this.connect();
        return this.waitUntilReady();
      case 'connecting':
        return this.waitUntilReady();
      case 'down':
        this.probe();
        return false;
      case 'closed':
        return false;
    }
  }

  /** While the first connection is being made: wait for it, at most one command timeout. */
  private waitUntilReady(): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (ready: boolean) => {
        this.timers.clearTimeout(timer);
        this.waiters.delete(finish);
        resolve(ready);
      };
      const timer = this.timers.setTimeout(() => finish(false), this.commandTimeoutMs);
      this.waiters.add(finish);
    });
  }

  /** A connected Redis that timed out gets one background PING per probe interval. */
  private probe(): void {
    if (this.probing || this.client.status !== 'ready') return;
    const now = this.clock.now();
    if (now < this.nextProbeAt) return;
    this.probing = true;
    this.client.ping().then(
      () => {
        this.probing = false;
        if (this.currentState === 'down') this.toState('ready', null);
      },
      () => {
        this.probing = false;
        this.nextProbeAt = this.clock.now() + this.probeIntervalMs;
      },
    );
  }

  private async getEntry(key: string): Promise<CacheEntry | undefined> {
    const raw = await this.run(() => this.client.get(key));
    return raw === null ? undefined : parseEntry(raw);
  }

  private async setEntry(key: string, entry: CacheEntry): Promise<void> {
    const ttl = Math.max(1, Math.ceil(entry.expiresAt - this.clock.now()));
    // The stored JSON is embedded as it is: `entry.json` is valid JSON text already.
    const raw = `{"t":${entry.storedAt},"e":${entry.expiresAt},"v":${entry.json}}`;
    await this.run(() => this.client.set(key, raw, 'PX', ttl));
  }

  private async clearPrefix(prefix: string): Promise<number> {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await this.run(() =>
        this.client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000),
      );
      cursor = next;
      if (keys.length > 0) removed += await this.run(() => this.client.unlink(...keys));
    } while (cursor !== '0');
    return removed;
  }

  /** Runs a command; a failure other than an error reply means Redis is down for now. */
  private async run<T>(command: () => Promise<T>): Promise<T> {
    const repliesBefore = this.replies;
    try {
      const result = await command();
      this.replies += 1;
      return result;
    } catch (error) {
      // A busy event loop fires command timers before it reads replies already waiting in the
      // socket: after the next I/O phase, any reply since this command was sent means Redis is
      // alive and only this process was late, which is no reason to put Redis aside.
      if (isTimeout(error)) {
        await new Promise((resolve) => setImmediate(resolve));
        if (this.replies > repliesBefore) throw error;
      }
      if (error instanceof Error && error.name === 'ReplyError') {
        this.emit(
          'reply-error',
          new KasaError('CACHE_BACKEND_ERROR', errorMessage(error), {
            url: this.displayUrl,
            cause: errorMessage(error),
          }),
        );
      } else {
        this.nextProbeAt = this.clock.now() + this.probeIntervalMs;
        this.toState('down', this.unavailable(error));
      }
      throw error;
    }
  }

  private toState(next: SecondLevelState, cause: KasaError | null): void {
    if (next === this.currentState || this.currentState === 'closed') return;
    this.currentState = next;
    if (next !== 'connecting') for (const finish of [...this.waiters]) finish(next === 'ready');
    this.emit('state', next, cause);
  }

  private unavailable(cause: unknown): KasaError {
    const text = errorMessage(cause) || 'connection failed';
    return new KasaError('CACHE_BACKEND_UNAVAILABLE', `Redis ${this.displayUrl}: ${text}`, {
      url: this.displayUrl,
      cause: text,
    });
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && /timed out/i.test(error.message);
}

/** An entry as this package writes it; anything else at one of its keys is treated as absent. */
function parseEntry(raw: string): CacheEntry | undefined {
  try {
    const parsed = JSON.parse(raw) as { t?: unknown; e?: unknown; v?: unknown };
    if (typeof parsed.t !== 'number' || typeof parsed.e !== 'number' || !('v' in parsed)) {
      return undefined;
    }
    return { json: JSON.stringify(parsed.v), storedAt: parsed.t, expiresAt: parsed.e };
  } catch {
    return undefined;
  }
}
