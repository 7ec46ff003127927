import type { PollTarget } from './device-entries';

/** setInterval/clearInterval, injectable so tests can drive time. */
export interface IntervalTimers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const nodeTimers: IntervalTimers = {
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

/** Shortest interval a schedule accepts, ms: local plugs should not be asked more often. */
export const MIN_INTERVAL_MS = 1000;
/** Longest interval a schedule accepts, ms (one day). */
export const MAX_INTERVAL_MS = 86_400_000;

export interface PollSchedulerOptions<Sink> {
  targets: readonly PollTarget[];
  /** Interval of every target until changed, ms; 0 polls only when asked. */
  intervalMs: number;
  /**
   * Polls a group of targets that fell due together and resolves when all are done; `sink` is
   * what `pollNow` was given (undefined for timer cycles). It must not reject. It may call
   * `done(target)` as soon as one target's poll is over, so that target is polled again at its
   * next tick even while others of the group are still being polled (a dead plug must not hold
   * back the healthy ones, case-009); every target is released when the promise settles anyway.
   */
  poll: (
    targets: PollTarget[],
    sink: Sink | undefined,
    done: (target: PollTarget) => void,
  ) => Promise<void>;
  timers?: IntervalTimers;
}

/**
 * Per-target poll intervals. Targets that share an interval share one timer and are polled as
 * one cycle; a target still being polled when it falls due again is skipped, so a slow device
 * never has two polls in flight (case-008).
 */
export class PollScheduler<Sink = undefined> {
  private readonly intervals = new Map<string, number>();
  private readonly timers = new Map<number, unknown>();
  private readonly inFlight = new Map<string, object>();
  /** Cycles not yet settled, including those whose targets were all released early. */
  private readonly cycles = new Set<Promise<void>>();
  private readonly clock: IntervalTimers;
  private running = false;

  constructor(private readonly options: PollSchedulerOptions<Sink>) {
    this.clock = options.timers ?? nodeTimers;
    for (const target of options.targets) this.intervals.set(target.key, options.intervalMs);
  }

  get targets(): readonly PollTarget[] {
    return this.options.targets;
  }

  start(): void {
    this.running = true;
    this.rebuildTimers();
  }

  /** Stops the timers and resolves when the polls under way have finished. */
  async stop(): Promise<void> {
    this.running = false;
    this.rebuildTimers();
    await Promise.allSettled(this.cycles);
  }

  /** The interval of one target, ms. */
  intervalOf(targetKey: string): number | undefined {
    return this.intervals.get(targetKey);
  }

  /** Changes the interval of the given targets (all when omitted); 0 stops their timer. */
  setInterval(intervalMs: number, targetKeys?: readonly string[]): void {
    for (const key of targetKeys ?? this.intervals.keys()) {
      if (this.intervals.has(key)) this.intervals.set(key, intervalMs);
    }
    this.rebuildTimers();
  }

  /** Polls the given targets now (those not already being polled) as one cycle. */
  pollNow(targets: readonly PollTarget[] = this.options.targets, sink?: Sink): Promise<void> {
    const due = targets.filter((target) => !this.inFlight.has(target.key));
    if (due.length === 0) return Promise.resolve();
    // Marks this cycle's targets as in flight until each is released, early or at the end.
    const token = {};
    for (const target of due) this.inFlight.set(target.key, token);
    const release = (target: PollTarget): void => {
      if (this.inFlight.get(target.key) === token) this.inFlight.delete(target.key);
    };
    const cycle = this.options.poll(due, sink, release).finally(() => {
      this.cycles.delete(cycle);
      for (const target of due) release(target);
    });
    this.cycles.add(cycle);
    return cycle;
  }

  /**
   * Keeps one timer per interval in use. Timers of intervals still in use are left running:
   * recreating them on every change would restart their phase, and a slow group whose
   * neighbours change intervals more often than it ticks would never be polled.
   */
  private rebuildTimers(): void {
    const wanted = new Set<number>();
    if (this.running)
      for (const interval of this.intervals.values()) {
        if (interval > 0) wanted.add(interval);
      }
    for (const [interval, handle] of this.timers) {
      if (wanted.has(interval)) continue;
      this.clock.clearInterval(handle);
      this.timers.delete(interval);
    }
    for (const interval of wanted) {
      if (this.timers.has(interval)) continue;
      // The group is looked up at each tick, so targets moved in or out since are honoured.
      const handle = this.clock.setInterval(() => {
        const group = this.options.targets.filter(
          (target) => this.intervals.get(target.key) === interval,
        );
        void this.pollNow(group);
      }, interval);
      this.timers.set(interval, handle);
    }
  }
}
