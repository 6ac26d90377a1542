/**
 * The metrics every request touches, kept as plain numbers and handed to
 * prom-client only when they are read (a scrape, the status page's sampler,
 * a test's `get()`): STYLE §11, the hot path pays only for what it needs.
 *
 * A prom-client child costs, per `inc()` or `observe()`, a label object
 * hashed to a string, label validation, and for a histogram a linear bucket
 * search over an object keyed by bound, and `labels()` makes a new closure
 * per call; measured at about 4 % of the CPU of a denied request. Here:
 * - a counter series is a number (`PendingCount`), added to its prom-client
 *   child in the counter's `collect()` (prom-client calls it before every
 *   read): same name, help, type, labels and values, all through
 *   prom-client's own Counter;
 * - a histogram series is a Float64Array of bucket counts, a sum and a count
 *   (`BatchedHistogram`), registered on the registry as a metric of its own
 *   whose `get()` returns exactly what prom-client's Histogram returns for
 *   the same observations (same values, order and labels, so the same
 *   exposition text: test/unit/metrics-batched.test.ts compares both).
 * Every series exists at zero from its creation, as before.
 */
import { Counter, type CounterConfiguration, type Metric, type MetricObjectWithValues, type MetricValueWithName, type Registry } from 'prom-client';

export interface Inc {
  inc(value?: number): void;
}
export interface Observe {
  observe(value: number): void;
}

/** One counter series: increments add up here, and reach prom-client at the next read. */
class PendingCount implements Inc {
  private n = 0;

  constructor(private readonly child: Inc) {}

  inc(value = 1): void {
    this.n += value;
  }

  flush(): void {
    if (this.n === 0) return;
    this.child.inc(this.n);
    this.n = 0;
  }
}

/** A prom-client Counter whose series are incremented as plain numbers (see the file's comment). */
export class BatchedCounter<L extends string> {
  readonly counter: Counter<L>;
  private readonly cells: PendingCount[] = [];

  constructor(config: Omit<CounterConfiguration<L>, 'collect'>) {
    const cells = this.cells;
    this.counter = new Counter<L>({
      ...config,
      collect() {
        for (let i = 0; i < cells.length; i++) cells[i]!.flush();
      },
    });
  }

  /** The series of these label values (in labelNames order), created at zero. Call once per series and keep it. */
  series(...values: string[]): Inc {
    const child: Inc = values.length === 0 ? this.counter : this.counter.labels(...values);
    child.inc(0);
    const cell = new PendingCount(child);
    this.cells.push(cell);
    return cell;
  }
}

/** One histogram series: non-cumulative bucket counts (the last one is +Inf only), sum and count. */
class HistogramSeries implements Observe {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    // prom-client throws on a value that is not a finite number; none reaches here (durations), and
    // a throw on the hot path would be a 500: such a value is dropped.
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }

  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

export interface BatchedHistogramConfig {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
  readonly buckets: readonly number[];
  readonly registers: readonly Registry[];
}

/**
 * A histogram registered on the registry as a metric of its own, with
 * prom-client's Histogram interface for reading (`get`, `reset`); series are
 * made with `series()` and observed without any label handling.
 */
export class BatchedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  private readonly bounds: readonly number[];
  private readonly all: HistogramSeries[] = [];

  constructor(config: BatchedHistogramConfig) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames ?? [];
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values (in labelNames order), created at zero. Call once per series and keep it. */
  series(...values: string[]): Observe {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    const labels: Record<string, string> = {};
    this.labelNames.forEach((name, i) => (labels[name] = values[i]!));
    const s = new HistogramSeries(labels, this.bounds);
    this.all.push(s);
    return s;
  }

  /** What prom-client's Histogram#get returns: per series, the cumulative buckets, +Inf, sum and count. */
  get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const values: MetricValueWithName<string>[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.all) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.bounds[i]!, ...s.labels }, value: acc, metricName: bucket, exemplar: null } as MetricValueWithName<string>);
      }
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket, exemplar: null } as MetricValueWithName<string>);
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined } as MetricValueWithName<string>);
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count`, exemplar: undefined } as MetricValueWithName<string>);
    }
    // prom-client's typings say an enum and a collect function; at run time (and in what the registry reads) the type is this string.
    const metric = { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
    return Promise.resolve(metric as unknown as MetricObjectWithValues<MetricValueWithName<string>>);
  }

  /** registry.resetMetrics(): every series back to zero (it stays exposed, at zero). */
  reset(): void {
    for (const s of this.all) s.clear();
  }
}
