import { type Clock, systemClock } from '../types';

export interface RetryingOpenOptions<T> {
  /** Shortest time between a failed attempt and the next, ms. */
  retryMs: number;
  clock?: Clock;
  /** After each successful open; `recovered` when an earlier attempt had failed. */
  onOpen?(value: T, recovered: boolean): void;
  /** After each failed attempt. */
  onFail?(error: unknown): void;
}

/**
 * Something opened once that may fail to open (a database in a folder that does not exist yet,
 * a locked file). After a failure it is tried again on demand, at most every `retryMs`, so fixing
 * the cause is enough; requests refused meanwhile are counted, so the failure can be reported
 * once rather than per request.
 */
export class RetryingOpen<T> {
  private value: T | null = null;
  private failure: { error: unknown; at: number; refused: number } | null = null;
  private readonly clock: Clock;

  constructor(
    private readonly openValue: () => T,
    private readonly options: RetryingOpenOptions<T>,
  ) {
    this.clock = options.clock ?? systemClock;
  }

  /** Opens now: the value, or null after recording the failure. */
  open(): T | null {
    try {
      const value = this.openValue();
      const recovered = this.failure !== null;
      this.value = value;
      this.failure = null;
      this.options.onOpen?.(value, recovered);
      return value;
    } catch (error) {
      this.failure = { error, at: this.clock.now(), refused: this.failure?.refused ?? 0 };
      this.options.onFail?.(error);
      return null;
    }
  }

  /** The open value; after a failure, a new attempt once `retryMs` has passed since the last. */
  get(): T | null {
    const failure = this.failure;
    if (this.value === null && failure !== null) {
      if (this.clock.now() - failure.at >= this.options.retryMs) this.open();
    }
    return this.value;
  }

  /**
   * Counts a request that could not be served because opening failed: how many so far (1 for the
   * first since the failures began) and why. Null when nothing failed.
   */
  refuse(): { refused: number; error: unknown } | null {
    if (this.failure === null) return null;
    this.failure.refused += 1;
    return { refused: this.failure.refused, error: this.failure.error };
  }

  /** Hands the value over for closing; afterwards nothing is open. */
  take(): T | null {
    const value = this.value;
    this.value = null;
    return value;
  }
}
