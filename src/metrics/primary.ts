/**
 * The primary's own metrics under `--workers N` (the workers' are in
 * metrics.ts, one registry per worker, summed with these by cluster/aggregate.ts). On a
 * registry of its own, like every edge registry (no prom-client global).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { DROPPED_DEFAULT_METRICS, type Listener, type UncaughtKind } from './metrics.js';

export interface WorkerCounts {
  /** Worker processes configured (--workers). */
  readonly configured: number;
  /** Worker processes running now. */
  readonly running: number;
  /** Workers listening and not draining. */
  readonly ready: number;
}

export class PrimaryMetrics {
  readonly registry = new Registry();
  private readonly restarts: Counter;
  private readonly internalErrors: Counter<'listener'>;
  private readonly uncaughtErrors: Counter<'kind'>;

  constructor(counts: () => WorkerCounts, options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics !== false) {
      // The primary's process metrics are summed with the workers' (aggregate.ts): process_resident_memory_bytes is the whole edge's.
      collectDefaultMetrics({ register: this.registry });
      for (const name of DROPPED_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    }
    new Gauge({
      name: 'edge_workers',
      help: 'Worker processes (--workers), by state: configured, running (a process exists), ready (listening, not draining).',
      labelNames: ['state'] as const,
      registers,
      collect() {
        const c = counts();
        this.set({ state: 'configured' }, c.configured);
        this.set({ state: 'running' }, c.running);
        this.set({ state: 'ready' }, c.ready);
      },
    });
    this.restarts = new Counter({
      name: 'edge_worker_restarts_total',
      help: 'Workers restarted after they exited unexpectedly (a crash, a kill): at most 10 a minute per worker, so a crash loop shows here as a steady rate.',
      registers,
    });
    this.restarts.inc(0);
    // The same series as a worker's (metrics.ts): summed, they count the primary's own survived bugs too.
    this.internalErrors = new Counter({ name: 'edge_internal_errors_total', help: 'Requests whose handler threw or rejected unexpectedly (answered 500, the edge kept running), by listener.', labelNames: ['listener'] as const, registers });
    this.uncaughtErrors = new Counter({ name: 'edge_uncaught_errors_total', help: 'Exceptions and promise rejections that escaped every handler (logged, the edge kept running), by kind.', labelNames: ['kind'] as const, registers });
  }

  internalError(listener: Listener): void {
    this.internalErrors.inc({ listener });
  }

  uncaught(kind: UncaughtKind): void {
    this.uncaughtErrors.inc({ kind });
  }

  workerRestarted(): void {
    this.restarts.inc();
  }
}
