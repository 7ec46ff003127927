import type { Clock, Reading } from '../types';

interface Answer {
  /** When the device's reply arrived, ms since the epoch. */
  at: number;
  readings: readonly Reading[];
}

/**
 * The last answer of each poll target, so that a target asked for again within `windowMs` (by a
 * second kasa-poll node, or an on-demand poll right after a timer one) is answered from it
 * instead of with another device request.
 */
export class RecentPolls {
  private readonly answers = new Map<string, Answer>();
  private readonly pending = new Map<string, Promise<readonly Reading[]>>();
  /** Size at which expired answers are next swept out. */
  private sweepAt = 64;

  /**
   * @param windowMs - how long an answer stands in for a new poll, ms (> 0)
   */
  constructor(
    readonly windowMs: number,
    private readonly clock: Clock,
  ) {}

  /**
   * The readings of a poll of `key` still under way, or of one answered less than `windowMs`
   * ago; undefined when the device must be asked.
   */
  lookup(key: string): Promise<readonly Reading[]> | readonly Reading[] | undefined {
    const pending = this.pending.get(key);
    if (pending !== undefined) return pending;
    const answer = this.answers.get(key);
    if (answer === undefined) return undefined;
    if (this.clock.now() - answer.at < this.windowMs) return answer.readings;
    this.answers.delete(key);
    return undefined;
  }

  /**
   * Runs a poll of `key`, so polls asked for meanwhile share it, and keeps its readings once it
   * succeeds; a failed poll is not remembered, so the next one asks the device again.
   */
  async track<T extends { readings: Reading[] }>(key: string, poll: Promise<T>): Promise<T> {
    const readings = poll.then((outcome) => outcome.readings);
    // Sharers see the failure through their own await; this copy must not go unhandled.
    readings.catch(() => undefined);
    this.pending.set(key, readings);
    try {
      const outcome = await poll;
      this.answers.set(key, { at: this.clock.now(), readings: outcome.readings });
      this.sweep();
      return outcome;
    } finally {
      if (this.pending.get(key) === readings) this.pending.delete(key);
    }
  }

  get size(): number {
    return this.answers.size;
  }

  /** Drops expired answers now and then, so targets no longer polled do not pile up. */
  private sweep(): void {
    if (this.answers.size < this.sweepAt) return;
    const now = this.clock.now();
    for (const [key, answer] of this.answers) {
      if (now - answer.at >= this.windowMs) this.answers.delete(key);
    }
    this.sweepAt = Math.max(64, this.answers.size * 2);
  }
}

/**
 * A reading answered from the last poll: marked `cached`, its timestamp kept. Its `energy_wh` is
 * booked again by the caller for the consumer it goes to.
 */
export function cachedReading(reading: Reading): Reading {
  return { ...reading, energy_wh: null, cached: true };
}
