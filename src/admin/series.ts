/**
 * The pure math behind the status page's charts: what two readings of our own
 * counters and histograms say about the interval between them (rates,
 * quantiles, availability), and the bounded buffer the points live in. No
 * clock, no registry, no timer: admin/sampler.ts owns those.
 */

/** One series of a prom-client `metric.get()` answer. */
export interface MetricSample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number | undefined>>;
  /** Histograms: `<name>_bucket`, `<name>_sum`, `<name>_count`. */
  readonly metricName?: string;
}

/** A cumulative histogram bucket: observations ≤ `le` (the last one is +Inf). */
export interface Bucket {
  readonly le: number;
  readonly count: number;
}

/** Everything the status page needs from one read of the registry (counters are totals since start). */
export interface Reading {
  /** Monotonic ms (performance.now): intervals are measured with it, immune to wall-clock steps. */
  readonly monoMs: number;
  /** Epoch ms: the time axis of the charts. */
  readonly wallMs: number;
  readonly requests: number;
  readonly bytes: number;
  /** Decisions applied to requests, by source (cache, backend, coalesced, rule, default). */
  readonly decisions: Readonly<Record<string, number>>;
  /** Middleware calls that got an answer (allow or deny). */
  readonly backendAnswered: number;
  /** Middleware calls that did not (timeout, refused, 5xx, malformed). */
  readonly backendFailed: number;
  /** Middleware call duration, all backends summed, seconds. */
  readonly backendBuckets: readonly Bucket[];
  /** Sessions let in by the default action while the middleware was unavailable. */
  readonly defaultAllows: number;
  /** Open sessions at the time of the reading. */
  readonly sessions: number;
}

/** One point of the last-15-minutes charts: the interval that ends at `t`. */
export interface Point {
  readonly t: number;
  readonly seconds: number;
  readonly sessions: number;
  /** Requests answered in the interval. */
  readonly requests: number;
  readonly requestsPerSec: number;
  readonly bytesPerSec: number;
  readonly decisionsPerSec: Readonly<Record<string, number>>;
  readonly middleware: {
    readonly calls: number;
    readonly answered: number;
    /** answered / calls; null when there were no calls (no calls is not an outage). */
    readonly availability: number | null;
    readonly p50Ms: number | null;
    readonly p99Ms: number | null;
  };
  /** Default-action allows in the interval (a count: they are rare and each one matters). */
  readonly defaultAllows: number;
}

/** Decimals kept in the JSON: enough for a tile, small on the wire. */
const ROUND = 1000;

function round(x: number): number {
  return Math.round(x * ROUND) / ROUND;
}

/**
 * Increase of a counter between two readings. A counter that went down was
 * reset, so what it holds now is all new (Prometheus's rule for rate()).
 */
export function counterDelta(before: number, after: number): number {
  return after >= before ? after - before : after;
}

/** Per-second rate of a counter over `seconds` (0 for an empty interval). */
export function counterRate(before: number, after: number, seconds: number): number {
  return seconds > 0 ? counterDelta(before, after) / seconds : 0;
}

/** Sum of the series whose labels pass `keep` (all of them without it). */
export function sumValues(values: readonly MetricSample[], keep?: (labels: MetricSample['labels']) => boolean): number {
  let sum = 0;
  for (const v of values) if (keep === undefined || keep(v.labels)) sum += v.value;
  return sum;
}

/** Sums by the value of one label: `{ cache: 12, backend: 3, … }`. */
export function sumByLabel(values: readonly MetricSample[], label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) {
    const key = v.labels[label];
    if (key === undefined) continue;
    out[String(key)] = (out[String(key)] ?? 0) + v.value;
  }
  return out;
}

/** The `_bucket` series of a histogram, summed over every other label, ordered by bound (+Inf last). */
export function bucketsOf(values: readonly MetricSample[]): Bucket[] {
  const byBound = new Map<number, number>();
  for (const v of values) {
    if (v.metricName?.endsWith('_bucket') !== true) continue;
    const le = v.labels['le'] === '+Inf' ? Infinity : Number(v.labels['le']);
    if (Number.isNaN(le)) continue;
    byBound.set(le, (byBound.get(le) ?? 0) + v.value);
  }
  return [...byBound].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
}

/**
 * The buckets of the interval: `after − before` bound by bound. A histogram
 * that was reset (a smaller total than before) counts from zero; bounds the
 * earlier reading did not have yet count in full.
 */
export function bucketDelta(before: readonly Bucket[], after: readonly Bucket[]): Bucket[] {
  const total = (b: readonly Bucket[]): number => b.at(-1)?.count ?? 0;
  if (total(after) < total(before)) return [...after];
  const old = new Map(before.map((b) => [b.le, b.count]));
  return after.map((b) => ({ le: b.le, count: Math.max(0, b.count - (old.get(b.le) ?? 0)) }));
}

/**
 * Prometheus's histogram_quantile over cumulative buckets: find the bucket
 * holding the q-th observation and interpolate linearly inside it (the first
 * bucket starts at 0). A quantile that lands in +Inf answers the largest
 * finite bound: all a histogram can say is "above that". Null without
 * observations.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (buckets.length === 0 || total <= 0 || Number.isNaN(q)) return null;
  const rank = Math.min(1, Math.max(0, q)) * total;
  // Cumulative counts must not decrease; a racy read can make them (Prometheus repairs the same way).
  let countBefore = 0;
  let lowerBound = 0;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i]!;
    const count = Math.max(countBefore, b.count);
    if (count >= rank && count > 0) {
      if (b.le === Infinity) return i === 0 ? null : buckets[i - 1]!.le;
      const inBucket = count - countBefore;
      if (inBucket <= 0) return lowerBound;
      return lowerBound + (b.le - lowerBound) * ((rank - countBefore) / inBucket);
    }
    countBefore = count;
    lowerBound = b.le;
  }
  return null;
}

/** The point for the interval between two readings. */
export function pointBetween(before: Reading, after: Reading): Point {
  const seconds = Math.max(0, (after.monoMs - before.monoMs) / 1000);
  const decisionsPerSec: Record<string, number> = {};
  for (const [source, count] of Object.entries(after.decisions)) decisionsPerSec[source] = round(counterRate(before.decisions[source] ?? 0, count, seconds));
  const answered = counterDelta(before.backendAnswered, after.backendAnswered);
  const calls = answered + counterDelta(before.backendFailed, after.backendFailed);
  const buckets = bucketDelta(before.backendBuckets, after.backendBuckets);
  const ms = (q: number): number | null => {
    const s = histogramQuantile(q, buckets);
    return s === null ? null : round(s * 1000);
  };
  return {
    t: after.wallMs,
    seconds: round(seconds),
    sessions: after.sessions,
    requests: counterDelta(before.requests, after.requests),
    requestsPerSec: round(counterRate(before.requests, after.requests, seconds)),
    bytesPerSec: Math.round(counterRate(before.bytes, after.bytes, seconds)),
    decisionsPerSec,
    middleware: { calls, answered, availability: calls === 0 ? null : round(answered / calls), p50Ms: ms(0.5), p99Ms: ms(0.99) },
    defaultAllows: counterDelta(before.defaultAllows, after.defaultAllows),
  };
}

/** Sums over a run of points: the "last 15 minutes" figures of the tiles. */
export interface WindowSummary {
  readonly seconds: number;
  readonly requests: number;
  readonly middlewareCalls: number;
  readonly middlewareAnswered: number;
  readonly middlewareAvailability: number | null;
  readonly defaultAllows: number;
}

export function summarize(points: readonly Point[]): WindowSummary {
  let seconds = 0;
  let requests = 0;
  let calls = 0;
  let answered = 0;
  let defaultAllows = 0;
  for (const p of points) {
    seconds += p.seconds;
    requests += p.requests;
    calls += p.middleware.calls;
    answered += p.middleware.answered;
    defaultAllows += p.defaultAllows;
  }
  return {
    seconds: round(seconds),
    requests,
    middlewareCalls: calls,
    middlewareAnswered: answered,
    middlewareAvailability: calls === 0 ? null : round(answered / calls),
    defaultAllows,
  };
}

/** A fixed-capacity FIFO: pushing onto a full buffer drops the oldest item. */
export class RingBuffer<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring buffer capacity must be a positive integer, got ${capacity}`);
    this.items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(item: T): void {
    this.items[(this.head + this.count) % this.capacity] = item;
    if (this.count < this.capacity) this.count++;
    else this.head = (this.head + 1) % this.capacity;
  }

  /** The newest item. */
  last(): T | undefined {
    return this.count === 0 ? undefined : this.items[(this.head + this.count - 1) % this.capacity];
  }

  /** Oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.items[(this.head + i) % this.capacity] as T);
    return out;
  }
}
