import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BatchedCounter, BatchedHistogram } from '../../src/metrics/batched.js';
import { EdgeMetrics } from '../../src/metrics/metrics.js';

const BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const KINDS = ['playlist', 'segment', 'stream', 'other'];

/** Values around and on the bounds, and past the last one (+Inf only). */
const observation = fc.oneof(fc.constantFrom(...BUCKETS, 0, 3, 1e6), fc.double({ min: 0, max: 5, noNaN: true }));

describe('BatchedHistogram', () => {
  it('reads (get) and exposes (registry.metrics) exactly what prom-client’s Histogram does for the same observations', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...KINDS), observation), { maxLength: 200 }), async (observations) => {
        const ours = new Registry();
        const theirs = new Registry();
        const config = { name: 'edge_test_seconds', help: 'A test histogram.', buckets: BUCKETS };
        const batched = new BatchedHistogram({ ...config, labelNames: ['kind'], registers: [ours] });
        const reference = new Histogram({ ...config, labelNames: ['kind'] as const, registers: [theirs] });
        const series = Object.fromEntries(KINDS.map((kind) => [kind, batched.series(kind)]));
        for (const kind of KINDS) reference.zero({ kind });
        for (const [kind, value] of observations) {
          series[kind]!.observe(value);
          reference.labels(kind).observe(value);
        }
        expect(await ours.metrics()).toBe(await theirs.metrics());
        expect(await ours.getSingleMetric('edge_test_seconds')!.get()).toEqual(await theirs.getSingleMetric('edge_test_seconds')!.get());
      }),
      { numRuns: 100 },
    );
  });

  it('without labels, too', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const series = new BatchedHistogram({ name: 'edge_x_seconds', help: 'x', buckets: [0.1, 1], registers: [ours] }).series();
    const reference = new Histogram({ name: 'edge_x_seconds', help: 'x', buckets: [0.1, 1], registers: [theirs] });
    for (const v of [0.05, 0.1, 0.5, 2]) {
      series.observe(v);
      reference.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});

describe('BatchedCounter', () => {
  it('exposes exactly what prom-client’s Counter does for the same increments, whenever it is read', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const batched = new BatchedCounter({ name: 'edge_test_total', help: 'A test counter.', labelNames: ['kind', 'code'] as const, registers: [ours] });
    const reference = new Counter({ name: 'edge_test_total', help: 'A test counter.', labelNames: ['kind', 'code'] as const, registers: [theirs] });
    const series = KINDS.map((kind) => [batched.series(kind, '2xx'), reference.labels(kind, '2xx')] as const);
    for (const [, r] of series) r.inc(0);
    for (let round = 0; round < 3; round++) {
      series.forEach(([b, r], i) => {
        for (let n = 0; n <= i + round; n++) {
          b.inc();
          r.inc();
        }
        b.inc(1000 * i);
        r.inc(1000 * i);
      });
      expect(await ours.metrics()).toBe(await theirs.metrics());
    }
  });
});

describe('EdgeMetrics on batched series', () => {
  it('a test reading a metric with get() sees every increment made before it', async () => {
    const metrics = new EdgeMetrics({ store: { stats: () => ({ entries: 0, evictions: 0 }) }, activeSessions: () => ({ hls: 0, mpegts: 0 }) }, { processMetrics: false });
    const value = async (name: string, labels: Record<string, string>): Promise<number> =>
      (await metrics.registry.getSingleMetric(name)!.get()).values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((n, v) => n + v.value, 0);
    metrics.request('playlist', 200);
    metrics.request('playlist', 403);
    metrics.decision(false, 'cache', 0.00002);
    metrics.backendConfigured('mw');
    metrics.backendCall('mw', 'allow', 0.002);
    expect(await value('edge_requests_total', { kind: 'playlist', code: '4xx' })).toBe(1);
    expect(await value('edge_auth_decisions_total', { result: 'deny', source: 'cache' })).toBe(1);
    const auth = (await metrics.registry.getSingleMetric('edge_auth_duration_seconds')!.get()).values.filter((v) => (v as { metricName?: string }).metricName === 'edge_auth_duration_seconds_count' && v.labels['source'] === 'cache');
    expect(auth[0]!.value).toBe(1);
    expect(await value('edge_auth_backend_requests_total', { backend: 'mw', outcome: 'allow' })).toBe(1);
    metrics.request('playlist', 403);
    expect(await value('edge_requests_total', { kind: 'playlist', code: '4xx' })).toBe(2);
    const text = await metrics.registry.metrics();
    expect(text).toContain('edge_auth_backend_duration_seconds_bucket{le="0.0025",backend="mw"} 1');
    expect(text).toContain('# TYPE edge_request_duration_seconds histogram');
  });
});
