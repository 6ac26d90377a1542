// The status page's math: counter rates (with resets), histogram quantiles as Prometheus computes
// them, the point between two readings, window sums, and the ring buffer's bound.
import { describe, expect, it } from 'vitest';
import {
  RingBuffer,
  bucketDelta,
  bucketsOf,
  counterDelta,
  counterRate,
  histogramQuantile,
  pointBetween,
  sumByLabel,
  sumValues,
  summarize,
  type Bucket,
  type Reading,
} from '../../src/admin/series.js';

const buckets = (pairs: [number, number][]): Bucket[] => pairs.map(([le, count]) => ({ le, count }));

describe('counter rates', () => {
  it('is the increase per second', () => {
    expect(counterDelta(10, 25)).toBe(15);
    expect(counterRate(10, 25, 5)).toBe(3);
  });

  it('a counter that went down was reset: its new value is all increase', () => {
    expect(counterDelta(100, 7)).toBe(7);
    expect(counterRate(100, 7, 2)).toBe(3.5);
  });

  it('an empty interval has rate 0, not Infinity or NaN', () => {
    expect(counterRate(1, 5, 0)).toBe(0);
  });
});

describe('histogramQuantile (Prometheus semantics)', () => {
  const h = buckets([[0.1, 10], [0.5, 30], [1, 40], [Infinity, 40]]);

  it('interpolates linearly inside the bucket that holds the rank', () => {
    // rank 20 lies in (0.1, 0.5] which holds observations 11..30: 0.1 + 0.4 * 10/20
    expect(histogramQuantile(0.5, h)).toBeCloseTo(0.3, 12);
    // rank 39.6 lies in (0.5, 1]: 0.5 + 0.5 * 9.6/10
    expect(histogramQuantile(0.99, h)).toBeCloseTo(0.98, 12);
    expect(histogramQuantile(1, h)).toBe(1);
  });

  it('the first bucket starts at 0', () => {
    expect(histogramQuantile(0.5, buckets([[0.1, 10], [Infinity, 10]]))).toBeCloseTo(0.05, 12);
  });

  it('a rank in +Inf answers the largest finite bound', () => {
    expect(histogramQuantile(0.99, buckets([[0.1, 0], [1, 5], [Infinity, 10]]))).toBe(1);
  });

  it('no observations → null (not 0: nothing was measured)', () => {
    expect(histogramQuantile(0.5, [])).toBeNull();
    expect(histogramQuantile(0.5, buckets([[0.1, 0], [Infinity, 0]]))).toBeNull();
  });

  it('repairs counts that decrease across bounds (a racy read) instead of answering garbage', () => {
    const q = histogramQuantile(0.5, buckets([[0.1, 10], [0.5, 8], [1, 20], [Infinity, 20]]));
    expect(q).toBeGreaterThanOrEqual(0.1);
    expect(q).toBeLessThanOrEqual(1);
  });
});

describe('buckets between two readings', () => {
  it('subtracts bound by bound', () => {
    const before = buckets([[0.1, 1], [1, 3], [Infinity, 4]]);
    const after = buckets([[0.1, 6], [1, 9], [Infinity, 10]]);
    expect(bucketDelta(before, after)).toEqual(buckets([[0.1, 5], [1, 6], [Infinity, 6]]));
  });

  it('a reset histogram counts from zero', () => {
    const after = buckets([[0.1, 1], [Infinity, 2]]);
    expect(bucketDelta(buckets([[0.1, 50], [Infinity, 90]]), after)).toEqual(after);
  });

  it('sums prom-client `_bucket` series over the other labels, ordered, +Inf last', () => {
    const values = [
      { metricName: 'x_bucket', labels: { backend: 'a', le: '+Inf' }, value: 3 },
      { metricName: 'x_bucket', labels: { backend: 'a', le: 0.5 }, value: 2 },
      { metricName: 'x_bucket', labels: { backend: 'b', le: 0.5 }, value: 1 },
      { metricName: 'x_bucket', labels: { backend: 'b', le: '+Inf' }, value: 4 },
      { metricName: 'x_sum', labels: { backend: 'a' }, value: 99 },
      { metricName: 'x_count', labels: { backend: 'a' }, value: 3 },
    ];
    expect(bucketsOf(values)).toEqual(buckets([[0.5, 3], [Infinity, 7]]));
  });

  it('sums counters, filtered or by label', () => {
    const values = [
      { labels: { result: 'allow', source: 'cache' }, value: 5 },
      { labels: { result: 'deny', source: 'cache' }, value: 1 },
      { labels: { result: 'allow', source: 'backend' }, value: 2 },
    ];
    expect(sumValues(values)).toBe(8);
    expect(sumValues(values, (l) => l['result'] === 'allow')).toBe(7);
    expect(sumByLabel(values, 'source')).toEqual({ cache: 6, backend: 2 });
  });
});

function reading(over: Partial<Reading>): Reading {
  return { monoMs: 0, wallMs: 0, requests: 0, bytes: 0, decisions: {}, backendAnswered: 0, backendFailed: 0, backendBuckets: [], defaultAllows: 0, sessions: 0, ...over };
}

describe('pointBetween', () => {
  it('turns two readings into rates, quantiles in ms, availability and counts', () => {
    const before = reading({ monoMs: 1000, wallMs: 1_700_000_000_000, requests: 100, bytes: 1000, decisions: { cache: 10, backend: 2 }, backendAnswered: 2, backendFailed: 0, backendBuckets: buckets([[0.01, 2], [0.1, 2], [Infinity, 2]]), defaultAllows: 1 });
    const after = reading({
      monoMs: 6000,
      wallMs: 1_700_000_005_000,
      requests: 150,
      bytes: 501_000,
      decisions: { cache: 40, backend: 7 },
      backendAnswered: 11,
      backendFailed: 1,
      backendBuckets: buckets([[0.01, 10], [0.1, 12], [Infinity, 12]]),
      defaultAllows: 2,
      sessions: 7,
    });
    const p = pointBetween(before, after);
    expect(p).toEqual({
      t: 1_700_000_005_000,
      seconds: 5,
      sessions: 7,
      requests: 50,
      requestsPerSec: 10,
      bytesPerSec: 100_000,
      decisionsPerSec: { cache: 6, backend: 1 },
      // 10 calls: 8 in (0, 10 ms], 2 in (10, 100 ms]; p50 = 10 ms * 5/8, p99 = 10 + 90 * (9.9 - 8)/2
      middleware: { calls: 10, answered: 9, availability: 0.9, p50Ms: 6.25, p99Ms: 95.5 },
      defaultAllows: 1,
    });
  });

  it('no middleware calls: availability and latency are null, not 0 %', () => {
    const p = pointBetween(reading({ monoMs: 0 }), reading({ monoMs: 5000, requests: 5 }));
    expect(p.middleware).toEqual({ calls: 0, answered: 0, availability: null, p50Ms: null, p99Ms: null });
    expect(p.requestsPerSec).toBe(1);
  });

  it('summarize adds up the window', () => {
    const a = pointBetween(reading({ monoMs: 0 }), reading({ monoMs: 5000, requests: 50, backendAnswered: 3, backendFailed: 1, defaultAllows: 1 }));
    const b = pointBetween(reading({ monoMs: 5000, requests: 50, backendAnswered: 3, backendFailed: 1, defaultAllows: 1 }), reading({ monoMs: 10_000, requests: 60, backendAnswered: 9, backendFailed: 1, defaultAllows: 1 }));
    expect(summarize([a, b])).toEqual({ seconds: 10, requests: 60, middlewareCalls: 10, middlewareAnswered: 9, middlewareAvailability: 0.9, defaultAllows: 1 });
    expect(summarize([]).middlewareAvailability).toBeNull();
  });
});

describe('RingBuffer', () => {
  it('keeps at most `capacity` items, dropping the oldest, oldest first', () => {
    const ring = new RingBuffer<number>(3);
    expect(ring.toArray()).toEqual([]);
    expect(ring.last()).toBeUndefined();
    for (let i = 1; i <= 2; i++) ring.push(i);
    expect(ring.toArray()).toEqual([1, 2]);
    for (let i = 3; i <= 10; i++) ring.push(i);
    expect(ring.size).toBe(3);
    expect(ring.toArray()).toEqual([8, 9, 10]);
    expect(ring.last()).toBe(10);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new RingBuffer(0)).toThrow(RangeError);
    expect(() => new RingBuffer(2.5)).toThrow(RangeError);
  });
});
