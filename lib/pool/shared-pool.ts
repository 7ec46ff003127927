import { createHash } from 'node:crypto';

import type { PollContext } from '../polling/poll-device';
import { RecentPolls } from '../polling/recent-polls';
import { BaselineFile } from '../readings/baseline-file';
import { EnergyTracker } from '../readings/energy';
import type { PlausibilityLimits } from '../readings/normalise';
import type { Clock, Logger } from '../types';
import { DevicePool, type DevicePoolOptions } from './device-pool';

export interface SharedPoolOptions {
  pool: Partial<DevicePoolOptions>;
  limits: PlausibilityLimits;
  /** Where energy baselines survive restarts; null keeps them in memory only. */
  baselinePath: string | null;
  /**
   * A target polled again within this long of its last answer gets that answer (readings
   * marked `cached`) instead of a device request, ms; default 0 (always ask the device).
   */
  minPollIntervalMs?: number;
  clock: Clock;
  logger: Logger;
}

/**
 * A device pool with what polling learns through it (energy baselines, device identities),
 * shared by every node that uses one kasa-device-pool config node.
 */
export class SharedPool {
  readonly pool: DevicePool;
  readonly context: PollContext;
  private readonly users = new Set<string>();
  private readonly baselines: BaselineFile | null;

  constructor(options: SharedPoolOptions) {
    this.pool = new DevicePool({ ...options.pool, clock: options.clock, logger: options.logger });
    const tracker = new EnergyTracker();
    this.baselines =
      options.baselinePath === null
        ? null
        : new BaselineFile(options.baselinePath, tracker, options.logger);
    this.baselines?.load();
    this.context = {
      requester: this.pool,
      tracker,
      learned: new Map(),
      limits: options.limits,
      clock: options.clock,
    };
    const minPollIntervalMs = options.minPollIntervalMs ?? 0;
    if (Number.isFinite(minPollIntervalMs) && minPollIntervalMs > 0) {
      this.context.recent = new RecentPolls(minPollIntervalMs, options.clock);
    }
  }

  /** Records a consumer (a kasa-poll node), the MQTT broker node's pattern. */
  register(userId: string): void {
    this.users.add(userId);
  }

  /**
   * Forgets a consumer. When the last one is removed from the flows (not merely redeployed), the
   * device connections are closed; a redeploy keeps them warm for the consumer's successor.
   */
  deregister(userId: string, removed: boolean): void {
    this.users.delete(userId);
    if (removed && this.users.size === 0) {
      for (const health of this.pool.snapshot()) this.pool.closeDevice(health);
    }
  }

  get userCount(): number {
    return this.users.size;
  }

  /** Notes changed energy baselines; they reach the file within a couple of seconds. */
  baselinesChanged(): void {
    this.baselines?.changed();
  }

  async close(): Promise<void> {
    this.baselines?.flush();
    await this.pool.close();
  }
}

interface RegistryEntry {
  shared: SharedPool;
  signature: string;
  linger: NodeJS.Timeout | null;
}

/**
 * Shared pools by config node id. A config node that is stopped for a redeploy leaves its pool
 * here for `lingerMs`, so the node that replaces it (same id, same settings) takes over the warm
 * connections; one that is removed, or not replaced in time, closes it.
 */
export class SharedPoolRegistry {
  private readonly entries = new Map<string, RegistryEntry>();

  /**
   * @param lingerMs - how long a released pool waits for its successor; default 3000
   */
  constructor(private readonly lingerMs = 3000) {}

  acquire(id: string, options: SharedPoolOptions): SharedPool {
    const signature = signatureOf(options);
    const entry = this.entries.get(id);
    if (entry !== undefined) {
      if (entry.linger !== null) clearTimeout(entry.linger);
      entry.linger = null;
      if (entry.signature === signature) return entry.shared;
      this.entries.delete(id);
      entry.shared.close().catch(() => undefined);
    }
    const shared = new SharedPool(options);
    this.entries.set(id, { shared, signature, linger: null });
    return shared;
  }

  /**
   * Gives a pool back: closed now when removed, after the linger time otherwise.
   * @param lingerMs - overrides the registry's linger time for this release
   */
  async release(id: string, removed: boolean, lingerMs = this.lingerMs): Promise<void> {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    if (removed || lingerMs <= 0) {
      this.entries.delete(id);
      await entry.shared.close();
      return;
    }
    if (entry.linger !== null) clearTimeout(entry.linger);
    entry.linger = setTimeout(() => {
      if (this.entries.get(id) !== entry) return;
      this.entries.delete(id);
      entry.shared.close().catch(() => undefined);
    }, lingerMs);
    entry.linger.unref();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Closes every pool at once (process shutdown, tests). */
  async closeAll(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const entry of entries) if (entry.linger !== null) clearTimeout(entry.linger);
    await Promise.all(entries.map((entry) => entry.shared.close()));
  }
}

function signatureOf(options: SharedPoolOptions): string {
  // Collaborators (functions) are not settings: a redeploy gets fresh ones but may keep the pool.
  const settingsOnly = (_key: string, value: unknown) =>
    typeof value === 'function' ? undefined : value;
  return createHash('sha1')
    .update(
      JSON.stringify(
        [options.pool, options.limits, options.baselinePath, options.minPollIntervalMs ?? 0],
        settingsOnly,
      ),
    )
    .digest('hex');
}

/** The one registry of the Node-RED runtime. */
export const sharedPools = new SharedPoolRegistry();
