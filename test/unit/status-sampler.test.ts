// The status page's sampler over a real EdgeMetrics registry: it finds the edge's metrics by name,
// its buffer holds historyMs / sampleIntervalMs points at most, and close() stops its timer.
import { describe, expect, it } from 'vitest';
import { StatusSampler, readRegistry } from '../../src/admin/sampler.js';
import { EdgeMetrics } from '../../src/metrics/metrics.js';
import { sleep, waitFor } from '../helpers/wait.js';

function edgeMetrics(): EdgeMetrics {
  return new EdgeMetrics({ store: { stats: () => ({ entries: 0, evictions: 0 }) }, activeSessions: () => ({ hls: 2, mpegts: 1 }) }, { processMetrics: false });
}

describe('StatusSampler', () => {
  it('reads the edge metrics by their names and makes a point of the interval', async () => {
    const metrics = edgeMetrics();
    metrics.backendConfigured('http');
    const sampler = new StatusSampler({ registry: metrics.registry, sampleIntervalMs: 1000 });
    await sampler.sample();
    expect(sampler.timeseries().points).toEqual([]);
    for (let i = 0; i < 10; i++) metrics.request('segment', 200);
    metrics.bytesSent('segment', 4096);
    metrics.decision(true, 'cache', 0.00001);
    metrics.decision(true, 'backend', 0.004);
    metrics.backendCall('http', 'allow', 0.004);
    metrics.backendCall('http', 'timeout', 1);
    metrics.decision(true, 'default', 0.001, true); // a request served on the default action (the middleware unavailable)
    await sleep(50);
    await sampler.sample();
    const [p, ...rest] = sampler.timeseries().points;
    expect(rest).toEqual([]);
    expect(p!.seconds).toBeGreaterThan(0);
    expect(p!.requests).toBe(10);
    expect(p!.requestsPerSec / (10 / p!.seconds)).toBeCloseTo(1, 1);
    expect(p!.sessions).toBe(3);
    expect(Object.keys(p!.decisionsPerSec).sort()).toEqual(['backend', 'cache', 'coalesced', 'default', 'rule']);
    expect(p!.middleware).toMatchObject({ calls: 2, answered: 1, availability: 0.5 });
    // One call in (2.5, 5] ms and one in (0.5, 1] s: p50 interpolates inside the first, p99 in the second.
    expect(p!.middleware.p50Ms).toBe(5);
    expect(p!.middleware.p99Ms).toBeGreaterThan(500);
    expect(p!.middleware.p99Ms).toBeLessThanOrEqual(1000);
    expect(p!.defaultAllows).toBe(1);
    const o = sampler.overview({ hls: 2, mpegts: 1 });
    expect(o).toMatchObject({ sampleIntervalMs: 1000, sessions: { total: 3, hls: 2, mpegts: 1 }, last: p, window: { requests: 10, middlewareCalls: 2, middlewareAvailability: 0.5, defaultAllows: 1 } });
    expect(o.totals).toMatchObject({ requests: 10, bytes: 4096, decisions: { cache: 1, backend: 1, default: 1 }, middlewareCalls: 2, middlewareAnswered: 1, defaultAllows: 1 });
  });

  it('an edge without a middleware has no latency series: null quantiles, not a crash', async () => {
    const r = await readRegistry(edgeMetrics().registry);
    expect(r.backendBuckets).toEqual([]);
    expect(r.decisions).toMatchObject({ cache: 0, default: 0 });
  });

  it('keeps historyMs / sampleIntervalMs points at most, dropping the oldest', async () => {
    const metrics = edgeMetrics();
    const sampler = new StatusSampler({ registry: metrics.registry, sampleIntervalMs: 10, historyMs: 50 });
    expect(sampler.timeseries()).toMatchObject({ sampleIntervalMs: 10, historyMs: 50, capacity: 5, points: [] });
    for (let i = 0; i < 9; i++) {
      metrics.request('playlist', 200);
      await sampler.sample();
    }
    const points = sampler.timeseries().points;
    expect(points).toHaveLength(5);
    for (let i = 1; i < points.length; i++) expect(points[i]!.t).toBeGreaterThanOrEqual(points[i - 1]!.t);
    expect(new StatusSampler({ registry: metrics.registry }).timeseries().capacity).toBe(180);
  });

  it('start() samples on its own unref\'ed timer; close() stops it and is idempotent', async () => {
    const sampler = new StatusSampler({ registry: edgeMetrics().registry, sampleIntervalMs: 20 });
    sampler.start();
    sampler.start();
    await waitFor(() => sampler.timeseries().points.length >= 3, { timeoutMs: 2000 });
    sampler.close();
    sampler.close();
    const n = sampler.timeseries().points.length;
    await sleep(100);
    expect(sampler.timeseries().points.length).toBe(n);
    await sampler.sample();
    expect(sampler.timeseries().points.length).toBe(n);
  });

  it('refuses a non-positive interval', () => {
    expect(() => new StatusSampler({ registry: edgeMetrics().registry, sampleIntervalMs: 0 })).toThrow(RangeError);
  });
});
