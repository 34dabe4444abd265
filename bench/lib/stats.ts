/* The statistics every benchmark reports: medians, nearest-rank quantiles, rates. */

/** Median of the finite values (mean of the two middle ones for an even count); NaN when there are none. */
export function median(values: readonly number[]): number {
  const sorted = finiteSorted(values)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Nearest-rank quantile of the finite values, `q` in [0, 1] (p99 of 500 samples = the 495th smallest); NaN when there are none. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = finiteSorted(values)
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

/** Operations per second. */
export function rate(ops: number, ms: number): number {
  return ops / (ms / 1000)
}

function finiteSorted(values: readonly number[]): number[] {
  return values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
}
