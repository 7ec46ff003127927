/**
 * Tells when a value crosses a limit upwards, once per crossing: a value that stays above is not
 * news, and only a drop below the limit re-arms the watch.
 */
export class CrossingWatch {
  private above = false;

  /** @param limit - the value above which `check` reports a crossing */
  constructor(readonly limit: number) {}

  /** True when `value` is above the limit and the previous checked value was not. */
  check(value: number): boolean {
    const above = value > this.limit;
    const crossed = above && !this.above;
    this.above = above;
    return crossed;
  }

  get isAbove(): boolean {
    return this.above;
  }
}
