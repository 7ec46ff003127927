/** The q-quantile (0..1) of the values, by nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

/** Rounds for display: 3 significant digits. */
export function round3(value: number): number {
  return Number.isFinite(value) ? Number(value.toPrecision(3)) : value;
}
