/**
 * The status page's memory: every few seconds the edge reads its own metrics
 * from its prom-client registry (the same numbers Prometheus scrapes), turns
 * the interval since the last reading into a point (rates, middleware
 * latency quantiles, availability) and keeps the last 15 minutes of points in
 * a ring buffer. So the page has charts on a box with no Prometheus, and no
 * hot-path code knows the page exists.
 *
 * Owner of one timer (unref'ed: it never holds the process up); `close()`
 * stops it (STYLE §6).
 */
import type { Registry } from 'prom-client';
import { RingBuffer, bucketsOf, pointBetween, summarize, sumByLabel, sumValues, type MetricSample, type Point, type Reading, type WindowSummary } from './series.js';

/** How often a point is taken. */
export const DEFAULT_SAMPLE_INTERVAL_MS = 5000;
/** How far back the charts reach. */
export const DEFAULT_HISTORY_MS = 15 * 60_000;

/** Middleware call outcomes that are an answer; the others (timeout, refused, http_5xx, invalid) are outages, as in the alert rules. */
const ANSWERED = new Set(['allow', 'deny']);

/**
 * Where metrics are read: our registry, or a function that builds one per
 * read (the primary of `--workers N`: the workers' registries, aggregated).
 */
export type RegistrySource = Registry | (() => Promise<Registry>);

export function readableRegistry(source: RegistrySource): Promise<Registry> {
  return typeof source === 'function' ? source() : Promise.resolve(source);
}

export interface SamplerOptions {
  readonly registry: RegistrySource;
  /** Default 5 s; tests use milliseconds. */
  readonly sampleIntervalMs?: number;
  /** Default 15 min; the buffer holds historyMs / sampleIntervalMs points. */
  readonly historyMs?: number;
}

export interface Timeseries {
  readonly sampleIntervalMs: number;
  readonly historyMs: number;
  readonly capacity: number;
  /** Oldest first. */
  readonly points: readonly Point[];
}

/** Counters since the edge started, as of the last reading. */
export interface Totals {
  readonly requests: number;
  readonly bytes: number;
  readonly decisions: Readonly<Record<string, number>>;
  readonly middlewareCalls: number;
  readonly middlewareAnswered: number;
  readonly defaultAllows: number;
}

export interface Overview {
  readonly at: string;
  readonly sampleIntervalMs: number;
  readonly sessions: { readonly total: number; readonly hls: number; readonly mpegts: number };
  /** The last interval; null until the first one has passed. */
  readonly last: Point | null;
  /** Sums over the buffered points (up to historyMs). */
  readonly window: WindowSummary | null;
  readonly totals: Totals | null;
}

export class StatusSampler {
  readonly sampleIntervalMs: number;
  readonly historyMs: number;
  private readonly registry: RegistrySource;
  private readonly points: RingBuffer<Point>;
  private previous: Reading | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private closed = false;

  constructor(options: SamplerOptions) {
    this.registry = options.registry;
    this.sampleIntervalMs = options.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS;
    this.historyMs = options.historyMs ?? DEFAULT_HISTORY_MS;
    if (!(this.sampleIntervalMs > 0)) throw new RangeError(`sampleIntervalMs must be positive, got ${this.sampleIntervalMs}`);
    this.points = new RingBuffer(Math.max(1, Math.ceil(this.historyMs / this.sampleIntervalMs)));
  }

  /** Takes the baseline reading now and a point every interval. */
  start(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setInterval(() => void this.sample(), this.sampleIntervalMs);
    this.timer.unref();
    void this.sample();
  }

  /** One reading now (what the timer does; tests call it directly). Overlapping calls share one read. */
  sample(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.inFlight ??= this.read().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async read(): Promise<void> {
    let reading: Reading;
    try {
      reading = await readRegistry(await readableRegistry(this.registry));
    } catch {
      // A failed read (a collect() callback threw) leaves a gap, not a wrong rate: start over from the next one.
      this.previous = undefined;
      return;
    }
    if (this.closed) return;
    if (this.previous !== undefined) this.points.push(pointBetween(this.previous, reading));
    this.previous = reading;
  }

  timeseries(): Timeseries {
    return { sampleIntervalMs: this.sampleIntervalMs, historyMs: this.historyMs, capacity: this.points.capacity, points: this.points.toArray() };
  }

  /** `sessions`: the live count from the session table (the points hold the count at sample time). */
  overview(sessions: Readonly<Record<'hls' | 'mpegts', number>>): Overview {
    const r = this.previous;
    const points = this.points.toArray();
    return {
      at: new Date().toISOString(),
      sampleIntervalMs: this.sampleIntervalMs,
      sessions: { total: sessions.hls + sessions.mpegts, hls: sessions.hls, mpegts: sessions.mpegts },
      last: this.points.last() ?? null,
      window: points.length === 0 ? null : summarize(points),
      totals:
        r === undefined
          ? null
          : { requests: r.requests, bytes: r.bytes, decisions: r.decisions, middlewareCalls: r.backendAnswered + r.backendFailed, middlewareAnswered: r.backendAnswered, defaultAllows: r.defaultAllows },
    };
  }

  /** Stops the timer; idempotent. A read still in flight is dropped. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The series of one metric of ours (none if it does not exist: a gap, not a crash). */
async function valuesOf(registry: Registry, name: string): Promise<readonly MetricSample[]> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return [];
  return (await metric.get()).values;
}

/** Reads the metrics the page shows, by their public names (metrics/metrics.ts). */
export async function readRegistry(registry: Registry): Promise<Reading> {
  const [requests, bytes, decisions, backendCalls, backendDuration, defaultAllows, sessions] = await Promise.all([
    valuesOf(registry, 'edge_requests_total'),
    valuesOf(registry, 'edge_bytes_sent_total'),
    valuesOf(registry, 'edge_auth_decisions_total'),
    valuesOf(registry, 'edge_auth_backend_requests_total'),
    valuesOf(registry, 'edge_auth_backend_duration_seconds'),
    valuesOf(registry, 'edge_auth_failure_mode_allowed_total'),
    valuesOf(registry, 'edge_sessions_active'),
  ]);
  return {
    monoMs: performance.now(),
    wallMs: Date.now(),
    requests: sumValues(requests),
    bytes: sumValues(bytes),
    decisions: sumByLabel(decisions, 'source'),
    backendAnswered: sumValues(backendCalls, (l) => ANSWERED.has(String(l['outcome']))),
    backendFailed: sumValues(backendCalls, (l) => !ANSWERED.has(String(l['outcome']))),
    backendBuckets: bucketsOf(backendDuration),
    defaultAllows: sumValues(defaultAllows),
    sessions: sumValues(sessions),
  };
}
