import type { Timers } from '../../../lib/types';
import type { Clock } from '../../../lib/types';

/** Manual time for the writer: nothing fires until `advance` passes its due time. */
export class FakeTimers implements Timers, Clock {
  private time = 1_714_564_800_000;
  private nextId = 1;
  private readonly pending = new Map<number, { due: number; callback: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { due: this.time + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Number of timers waiting to fire. */
  get size(): number {
    return this.pending.size;
  }

  /** Delays of the waiting timers from now, ms. */
  delays(): number[] {
    return [...this.pending.values()].map((timer) => timer.due - this.time);
  }

  /** Moves time forward, firing due timers in order (including ones they schedule). */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let nextId: number | null = null;
      let next: { due: number; callback: () => void } | null = null;
      for (const [id, timer] of this.pending) {
        if (timer.due <= end && (next === null || timer.due < next.due)) {
          nextId = id;
          next = timer;
        }
      }
      if (next === null || nextId === null) break;
      this.pending.delete(nextId);
      this.time = next.due;
      next.callback();
    }
    this.time = end;
  }
}
