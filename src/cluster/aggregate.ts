/**
 * /metrics of the primary (`--workers N`): every worker's registry, summed
 * (prom-client's AggregatorRegistry.aggregate, each metric by its own
 * `aggregator`: sum unless it says otherwise), plus the primary's own.
 *
 * Not prom-client's AggregatorRegistry.clusterMetrics(): it reads the
 * global registry in each worker, and ours are per app (STYLE §5); each
 * worker answers a `metrics` op with `registry.getMetricsAsJSON()` instead.
 *
 * What a sum would get wrong is fixed here:
 * - edge_sessions_active: one HLS session is open on every worker that
 *   served it lately (connections go round-robin), so the sum counts it
 *   once per worker; the fleet's own count (PrimaryState) replaces it;
 * - a worker that exits takes its counters with it, and the sum would drop
 *   (rate() reads a drop as a reset and overshoots): the last counters and
 *   histograms it reported are kept and added, so the sums stay monotonic
 *   (what it counted after the last scrape is lost);
 * - a worker that does not answer in time is counted with its last answer,
 *   for the same reason.
 * edge_worker_requests_total{worker} is added: requests per worker slot, to
 * see that the scheduler spreads the load.
 */
import { AggregatorRegistry, Counter, Gauge, type Registry } from 'prom-client';
import type { SessionKind } from '../session/session.js';
import type { MetricJson, Op, OpAnswer } from './protocol.js';
import type { Slot } from './primary-state.js';

/** How long a scrape waits for the workers' metrics (Prometheus's scrape timeout is 10 s by default). */
export const METRICS_TIMEOUT_MS = 1500;
/** Metric types whose values only grow: what an exited worker leaves behind. */
const MONOTONIC_TYPES: ReadonlySet<string> = new Set(['counter', 'histogram']);
const SESSIONS_ACTIVE = 'edge_sessions_active';

export interface AggregatorOptions {
  readonly askAll: (op: Op, timeoutMs: number) => Promise<Map<Slot, OpAnswer | undefined>>;
  /** The primary's own registry (edge_workers, edge_worker_restarts_total, its process metrics). */
  readonly primary: Registry;
  /** Open sessions of the host by kind, counted once each; undefined: the workers' sum stands (with Redis). */
  readonly sessionsByKind: () => Readonly<Record<SessionKind, number>> | undefined;
  readonly timeoutMs?: number;
}

export class MetricsAggregator {
  private readonly options: AggregatorOptions;
  /** Each running worker's last answer. */
  private readonly last = new Map<Slot, readonly MetricJson[]>();
  /** The counters and histograms of workers that exited, summed. */
  private retired: MetricJson[] = [];

  constructor(options: AggregatorOptions) {
    this.options = options;
  }

  /** A registry with the sums, built for one read (a scrape, a status page sample). */
  async collect(): Promise<Registry> {
    const answers = await this.options.askAll({ op: 'metrics' }, this.options.timeoutMs ?? METRICS_TIMEOUT_MS);
    for (const [slot, answer] of answers) if (answer?.op === 'metrics') this.last.set(slot, answer.metrics);
    const workers = [...this.last.values()];
    const registry: Registry = AggregatorRegistry.aggregate([...workers, this.retired, await this.options.primary.getMetricsAsJSON()]);
    this.replaceSessionsActive(registry, workers);
    this.addPerWorkerRequests(registry);
    return registry;
  }

  /** A worker exited: its last counters join the retired sums. */
  workerExited(slot: Slot): void {
    const last = this.last.get(slot);
    this.last.delete(slot);
    if (last !== undefined) this.retired = sumMetrics([this.retired, last.filter((m) => MONOTONIC_TYPES.has(m.type))]);
  }

  private replaceSessionsActive(registry: Registry, workers: readonly (readonly MetricJson[])[]): void {
    const help = workers.flat().find((m) => m.name === SESSIONS_ACTIVE)?.help;
    const counts = this.options.sessionsByKind();
    if (help === undefined || counts === undefined) return;
    registry.removeSingleMetric(SESSIONS_ACTIVE);
    const gauge = new Gauge({ name: SESSIONS_ACTIVE, help, labelNames: ['kind'] as const, registers: [registry] });
    gauge.set({ kind: 'hls' }, counts.hls);
    gauge.set({ kind: 'mpegts' }, counts.mpegts);
  }

  private addPerWorkerRequests(registry: Registry): void {
    const counter = new Counter({ name: 'edge_worker_requests_total', help: 'Client requests answered by each worker process (slot 1..N; a restarted worker starts again from 0).', labelNames: ['worker'] as const, registers: [registry] });
    for (const [slot, metrics] of this.last) {
      const requests = metrics.find((m) => m.name === 'edge_requests_total');
      counter.inc({ worker: String(slot) }, requests === undefined ? 0 : requests.values.reduce((n, v) => n + v.value, 0));
    }
  }
}

/** Sums metrics of the same name, metric name and labels (the `sum` aggregator, without a registry). */
export function sumMetrics(sets: readonly (readonly MetricJson[])[]): MetricJson[] {
  const byName = new Map<string, { metric: MetricJson; values: Map<string, MetricJson['values'][number]> }>();
  for (const set of sets) {
    for (const m of set) {
      let entry = byName.get(m.name);
      if (entry === undefined) byName.set(m.name, (entry = { metric: m, values: new Map() }));
      for (const v of m.values) {
        const key = `${v.metricName ?? ''}\u0000${JSON.stringify(Object.entries(v.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;
        const known = entry.values.get(key);
        entry.values.set(key, known === undefined ? v : { ...known, value: known.value + v.value });
      }
    }
  }
  return [...byName.values()].map(({ metric, values }) => ({ name: metric.name, help: metric.help, type: metric.type, aggregator: metric.aggregator, values: [...values.values()] }));
}
