// The pure parts of --workers N: how many workers, the restart backoff and its cap, the settings,
// and the primary's /metrics (sums over workers, what a sum gets wrong, counters that survive a
// worker's exit).
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MetricsAggregator, sumMetrics } from '../../src/cluster/aggregate.js';
import type { MetricJson, Op, OpAnswer } from '../../src/cluster/protocol.js';
import { MAX_RESTARTS_PER_MINUTE, MAX_RESTART_DELAY_MS, RESTART_DELAY_MS, restartDelay } from '../../src/cluster/supervisor.js';
import { resolveWorkers } from '../../src/cluster/workers.js';
import { buildConfig, describeConfig } from '../../src/config/load.js';
import { MAX_WORKERS } from '../../src/config/options.js';
import { EdgeMetrics } from '../../src/metrics/metrics.js';
import { PrimaryMetrics } from '../../src/metrics/primary.js';
import type { StoreStats } from '../../src/metrics/metrics.js';

describe('--workers', () => {
  it('N or auto (one per available core, capped); validated with the setting named', () => {
    expect(buildConfig({}).workers).toBe(1);
    expect(buildConfig({ flags: { workers: '4' } }).workers).toBe(4);
    expect(buildConfig({ env: { EDGE_WORKERS: 'auto' } }).workers).toBe('auto');
    expect(buildConfig({ file: { workers: 3 } }).workers).toBe(3);
    expect(() => buildConfig({ flags: { workers: '0' } })).toThrow(/--workers.*"0".*positive integer or auto/);
    expect(() => buildConfig({ flags: { workers: 'many' } })).toThrow(/--workers.*"many"/);
    expect(() => buildConfig({ flags: { workers: String(MAX_WORKERS + 1) } })).toThrow(new RegExp(`--workers.*at most ${MAX_WORKERS}`));
    expect(resolveWorkers('auto', 8)).toBe(8);
    expect(resolveWorkers('auto', 500)).toBe(MAX_WORKERS);
    expect(resolveWorkers('auto', 0)).toBe(1);
    expect(resolveWorkers(3, 8)).toBe(3);
  });

  it('session.secret: at least 16 characters, redacted in check-config', () => {
    expect(() => buildConfig({ flags: { 'session.secret': 'short' } })).toThrow(/--session-secret: too short \(5 characters\)/);
    const c = buildConfig({ env: { EDGE_SESSION_SECRET: 'a-long-enough-secret-value' } });
    expect(c.session.secret).toBe('a-long-enough-secret-value');
    expect(JSON.stringify(describeConfig(c))).not.toContain('a-long-enough-secret-value');
  });
});

describe('restart backoff', () => {
  it('doubles per restart in the last minute, capped; forgets restarts older than a minute', () => {
    expect(restartDelay([], 0)).toBe(RESTART_DELAY_MS);
    expect(restartDelay([1000], 2000)).toBe(RESTART_DELAY_MS * 2);
    expect(restartDelay([1000, 2000, 3000], 4000)).toBe(RESTART_DELAY_MS * 8);
    expect(restartDelay([1000, 2000, 3000], 70_000)).toBe(RESTART_DELAY_MS);
    expect(restartDelay(Array.from({ length: 9 }, (_, i) => i), 10)).toBeLessThanOrEqual(MAX_RESTART_DELAY_MS);
  });

  it(`never more than ${MAX_RESTARTS_PER_MINUTE} restarts in any minute, however fast the worker dies`, () => {
    const restarts: number[] = [];
    let now = 0;
    // A worker that dies the moment it starts, for ten minutes.
    while (now < 600_000) {
      now += restartDelay(restarts, now);
      restarts.push(now);
    }
    for (const t of restarts) expect(restarts.filter((u) => u >= t && u < t + 60_000).length).toBeLessThanOrEqual(MAX_RESTARTS_PER_MINUTE);
    // Still restarting: a crash loop is slowed, not given up on.
    expect(restarts.filter((t) => t > 540_000).length).toBeGreaterThan(0);
  });
});

const NO_STORE: StoreStats = { stats: () => ({ entries: 0, evictions: 0 }) };

/** A worker's registry with `requests` playlist 2xx and `hls` open sessions. */
async function workerMetrics(requests: number, hls: number): Promise<MetricJson[]> {
  const m = new EdgeMetrics({ store: NO_STORE, activeSessions: () => ({ hls, mpegts: 0 }) }, { processMetrics: false });
  for (let i = 0; i < requests; i++) m.request('playlist', 200);
  return (await m.registry.getMetricsAsJSON()) as unknown as MetricJson[];
}

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return undefined;
  const values = (await metric.get()).values as { value: number; labels: Record<string, string | number>; metricName?: string }[];
  return values.find((v) => v.metricName === undefined && Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l))?.value;
}

describe('the primary /metrics', () => {
  it('sums counters over workers, counts sessions once, says how many requests each worker served', async () => {
    const answers = new Map<number, OpAnswer | undefined>([
      [1, { op: 'metrics', metrics: await workerMetrics(3, 1) }],
      [2, { op: 'metrics', metrics: await workerMetrics(4, 1) }],
    ]);
    const primary = new PrimaryMetrics(() => ({ configured: 2, running: 2, ready: 2 }), { processMetrics: false });
    // The one HLS session is open on both workers: the fleet counts it once.
    const agg = new MetricsAggregator({ askAll: async (_op: Op) => answers, primary: primary.registry, sessionsByKind: () => ({ hls: 1, mpegts: 0 }) });
    const r = await agg.collect();
    expect(await value(r, 'edge_requests_total', { kind: 'playlist', code: '2xx' })).toBe(7);
    expect(await value(r, 'edge_sessions_active', { kind: 'hls' })).toBe(1);
    expect(await value(r, 'edge_worker_requests_total', { worker: '1' })).toBe(3);
    expect(await value(r, 'edge_worker_requests_total', { worker: '2' })).toBe(4);
    expect(await value(r, 'edge_workers', { state: 'ready' })).toBe(2);
    expect(await value(r, 'edge_worker_restarts_total')).toBe(0);
    const text = await r.metrics();
    expect(text).toContain('edge_requests_total{kind="playlist",code="2xx"} 7');
  });

  it('a worker that exits leaves its counters in the sums (monotonic); one that does not answer counts with its last answer', async () => {
    let answers = new Map<number, OpAnswer | undefined>([
      [1, { op: 'metrics', metrics: await workerMetrics(3, 0) }],
      [2, { op: 'metrics', metrics: await workerMetrics(4, 0) }],
    ]);
    const primary = new PrimaryMetrics(() => ({ configured: 2, running: 2, ready: 2 }), { processMetrics: false });
    const agg = new MetricsAggregator({ askAll: async () => answers, primary: primary.registry, sessionsByKind: () => ({ hls: 0, mpegts: 0 }) });
    await agg.collect();
    // Worker 2 dies; its replacement has served 1 request; worker 1 is too busy to answer this scrape.
    agg.workerExited(2);
    answers = new Map([
      [1, undefined],
      [2, { op: 'metrics', metrics: await workerMetrics(1, 0) }],
    ]);
    const r = await agg.collect();
    expect(await value(r, 'edge_requests_total', { kind: 'playlist', code: '2xx' })).toBe(3 + 4 + 1);
  });

  it('sumMetrics adds values of the same metric name and labels, whatever the label order', () => {
    const a: MetricJson = { name: 'x_total', help: 'h', type: 'counter', aggregator: 'sum', values: [{ value: 1, labels: { a: '1', b: '2' } }] };
    const b: MetricJson = { name: 'x_total', help: 'h', type: 'counter', aggregator: 'sum', values: [{ value: 2, labels: { b: '2', a: '1' } }, { value: 5, labels: { a: '9' } }] };
    expect(sumMetrics([[a], [b]])[0]!.values).toEqual([
      { value: 3, labels: { a: '1', b: '2' } },
      { value: 5, labels: { a: '9' } },
    ]);
  });
});
