// The soak's verdicts (bench/soak-analysis.ts): what counts as "grows without bound".
import { describe, expect, it } from 'vitest';
import { afterWarmup, judgeGrowth, percentile, slope } from '../../bench/soak-analysis.js';

const MiB = 1024 * 1024;
const rule = { factor: 1.25, floor: 32 * MiB };
const seconds = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('judgeGrowth', () => {
  it('a flat series with noise is bounded', () => {
    const t = seconds(600);
    const v = t.map((i) => 200 * MiB + ((i * 7919) % 13) * MiB);
    expect(judgeGrowth(t, v, rule).unbounded).toBe(false);
  });

  it('a GC sawtooth is bounded: quarter means smooth it', () => {
    const t = seconds(600);
    const v = t.map((i) => 80 * MiB + (i % 37) * 1.5 * MiB);
    const verdict = judgeGrowth(t, v, { factor: 1.25, floor: 16 * MiB });
    expect(verdict.unbounded).toBe(false);
    expect(verdict.max).toBeCloseTo(80 * MiB + 36 * 1.5 * MiB);
  });

  it('a steady climb fails, and its slope is reported per minute', () => {
    const t = seconds(600);
    const v = t.map((i) => 150 * MiB + i * 0.25 * MiB); // +15 MiB/min
    const verdict = judgeGrowth(t, v, rule);
    expect(verdict.unbounded).toBe(true);
    expect(verdict.slopePerMinute / MiB).toBeCloseTo(15, 5);
  });

  it('a relative jump below the absolute floor passes (small series move a lot relatively)', () => {
    const t = seconds(60);
    const v = t.map((i) => (i < 45 ? 40 : 90)); // handles: ×2, but +50 < floor 100
    expect(judgeGrowth(t, v, { factor: 1.5, floor: 100 }).unbounded).toBe(false);
  });

  it('too few samples never fail', () => {
    expect(judgeGrowth([0, 1, 2], [1, 100, 1000], { factor: 1.1, floor: 1 }).unbounded).toBe(false);
  });
});

describe('helpers', () => {
  it('afterWarmup drops the samples before the warm-up ends', () => {
    expect(afterWarmup([{ t: 0 }, { t: 14.9 }, { t: 15 }, { t: 30 }], 15)).toEqual([{ t: 15 }, { t: 30 }]);
  });

  it('percentile is nearest-rank', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(percentile([], 99)).toBe(0);
  });

  it('slope of an exact line', () => {
    expect(slope([0, 1, 2, 3], [1, 3, 5, 7])).toBeCloseTo(2);
    expect(slope([5], [1])).toBe(0);
  });
});
