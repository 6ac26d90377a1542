// The soak's verdicts, as pure functions over the per-second samples (unit tested in
// test/unit/soak-analysis.test.ts): does a series grow without bound, and does the event-loop lag
// stay under its bound.

/** How a resource series is judged. */
export interface GrowthRule {
  /** The series fails when its last-quarter mean exceeds its first-quarter mean by this factor… */
  readonly factor: number;
  /** …and by at least this much in absolute terms (in the series' unit): small series move a lot relatively. */
  readonly floor: number;
}

export interface GrowthVerdict {
  /** Mean of the first quarter of the samples after warm-up. */
  readonly firstQuarter: number;
  /** Mean of the last quarter. */
  readonly lastQuarter: number;
  readonly max: number;
  /** Least-squares slope over the samples after warm-up, per minute. */
  readonly slopePerMinute: number;
  readonly unbounded: boolean;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Nearest-rank percentile (p in 0..100) of `values`; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** Slope of the least-squares line through (t[i], y[i]), in y-units per t-unit. */
export function slope(t: readonly number[], y: readonly number[]): number {
  const n = Math.min(t.length, y.length);
  if (n < 2) return 0;
  const mt = mean(t.slice(0, n));
  const my = mean(y.slice(0, n));
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (t[i]! - mt) * (y[i]! - my);
    den += (t[i]! - mt) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * "Grows without bound", judged on the samples after warm-up (`tSeconds` ascending): the mean of
 * the last quarter is above the mean of the first quarter by more than `rule.factor` AND by more
 * than `rule.floor`. A series that climbs during warm-up and then plateaus passes; a sawtooth (GC)
 * passes, since quarter means smooth it; a steady climb fails.
 */
export function judgeGrowth(tSeconds: readonly number[], values: readonly number[], rule: GrowthRule): GrowthVerdict {
  const quarter = Math.max(1, Math.floor(values.length / 4));
  const firstQuarter = mean(values.slice(0, quarter));
  const lastQuarter = mean(values.slice(-quarter));
  const unbounded = values.length >= 4 && lastQuarter > firstQuarter * rule.factor && lastQuarter - firstQuarter > rule.floor;
  return { firstQuarter, lastQuarter, max: values.length === 0 ? 0 : Math.max(...values), slopePerMinute: slope(tSeconds, values) * 60, unbounded };
}

/** Samples taken `warmupS` seconds or more after the start. */
export function afterWarmup<T extends { readonly t: number }>(samples: readonly T[], warmupS: number): T[] {
  return samples.filter((s) => s.t >= warmupS);
}
