/**
 * Prometheus text exposition (format 0.0.4) without a dependency: a registry of counters,
 * gauges and fixed-bucket histograms with labels. The node's own metrics are in metrics.ts.
 */
import { ValidationError } from '../errors/index.js';

/** Label values of one series, by label name. */
export type Labels = Readonly<Record<string, string | number>>;

/** The `Content-Type` of {@link MetricsRegistry.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Default latency buckets in seconds (1 ms .. 10 s). */
export const DEFAULT_SECONDS_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type MetricType = 'counter' | 'gauge' | 'histogram';

/** Options shared by every metric. */
export interface MetricInit {
  /** `[a-zA-Z_:][a-zA-Z0-9_:]*`; counters should end in `_total`. */
  name: string;
  help: string;
  /** Every series of the metric carries exactly these labels. */
  labelNames?: readonly string[];
}

/** A histogram's options: its upper bounds, ascending (`+Inf` is added). */
export interface HistogramInit extends MetricInit {
  buckets?: readonly number[];
}

abstract class Metric<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected readonly series = new Map<string, { labels: string[]; value: S }>();

  constructor(
    readonly type: MetricType,
    init: MetricInit,
  ) {
    if (!METRIC_NAME.test(init.name))
      throw new ValidationError(`metric name '${init.name}' is not valid`, { field: 'name' });
    const names = init.labelNames ?? [];
    for (const l of names) {
      if (!LABEL_NAME.test(l) || l.startsWith('__') || (type === 'histogram' && l === 'le')) {
        throw new ValidationError(`label name '${l}' of metric '${init.name}' is not valid`, {
          field: 'labelNames',
        });
      }
    }
    if (new Set(names).size !== names.length) {
      throw new ValidationError(`metric '${init.name}' repeats a label name`, { field: 'labelNames' });
    }
    this.name = init.name;
    this.help = init.help;
    this.labelNames = names;
  }

  /** Forgets every series (for metrics that mirror a set that can shrink). */
  reset(): void {
    this.series.clear();
  }

  /** The value of one series, without creating it. */
  protected find(labels: Labels | undefined): S | undefined {
    return this.series.get(this.labelValues(labels).join('\u0000'))?.value;
  }

  protected entry(labels: Labels | undefined, create: () => S): { labels: string[]; value: S } {
    const values = this.labelValues(labels);
    const key = values.join('\u0000');
    let e = this.series.get(key);
    if (!e) {
      e = { labels: values, value: create() };
      this.series.set(key, e);
    }
    return e;
  }

  private labelValues(labels: Labels | undefined): string[] {
    const given = labels ?? {};
    const keys = Object.keys(given);
    if (keys.length !== this.labelNames.length || keys.some((k) => !this.labelNames.includes(k))) {
      throw new ValidationError(
        `metric '${this.name}' takes labels [${this.labelNames.join(', ')}], got [${keys.join(', ')}]`,
        { field: 'labels' },
      );
    }
    return this.labelNames.map((n) => String(given[n]));
  }

  /** Exposition lines of the metric, HELP and TYPE first. */
  render(): string[] {
    const out = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    this.renderSeries(out);
    return out;
  }

  protected labelText(values: readonly string[], extra?: [string, string]): string {
    const pairs = this.labelNames.map((n, i) => `${n}="${escapeLabelValue(values[i] ?? '')}"`);
    if (extra) pairs.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
    return pairs.length ? `{${pairs.join(',')}}` : '';
  }

  protected abstract renderSeries(out: string[]): void;
}

/** A metric whose series each hold one number (counters and gauges). */
abstract class NumberMetric extends Metric<number> {
  /** The current value of one series (0 when it was never touched). */
  get(labels?: Labels): number {
    return this.find(labels) ?? 0;
  }

  protected renderSeries(out: string[]): void {
    if (this.series.size === 0 && this.labelNames.length === 0) out.push(`${this.name} 0`);
    for (const s of this.series.values())
      out.push(`${this.name}${this.labelText(s.labels)} ${formatValue(s.value)}`);
  }
}

/**
 * A value that only goes up.
 * @example
 * const c = registry.counter({ name: 'weft_sent_total', help: 'Messages sent', labelNames: ['channel'] });
 * c.inc(1, { channel: 'telegram' });
 */
export class Counter extends NumberMetric {
  constructor(init: MetricInit) {
    super('counter', init);
  }

  /** Adds `by` (≥ 0, default 1). */
  inc(by = 1, labels?: Labels): void {
    if (!(by >= 0))
      throw new ValidationError(`counter '${this.name}' cannot go down (inc by ${by})`, { field: 'by' });
    this.entry(labels, () => 0).value += by;
  }

  /** Mirrors a monotonic total kept elsewhere (an in-memory stat read at scrape time). */
  set(total: number, labels?: Labels): void {
    this.entry(labels, () => 0).value = total;
  }

}

/**
 * A value that goes up and down.
 * @example
 * const g = registry.gauge({ name: 'weft_queue_depth', help: 'Entries waiting' });
 * g.set(12);
 */
export class Gauge extends NumberMetric {
  constructor(init: MetricInit) {
    super('gauge', init);
  }

  set(value: number, labels?: Labels): void {
    this.entry(labels, () => 0).value = value;
  }

  inc(by = 1, labels?: Labels): void {
    this.entry(labels, () => 0).value += by;
  }

  dec(by = 1, labels?: Labels): void {
    this.entry(labels, () => 0).value -= by;
  }

}

interface HistogramState {
  /** Per bucket (not cumulative); the last slot is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * Observations counted into fixed buckets; rendered cumulatively with `_sum` and `_count`.
 * @example
 * const h = registry.histogram({ name: 'weft_batch_seconds', help: 'Batch latency', buckets: [0.01, 0.1, 1] });
 * h.observe(0.042);
 */
export class Histogram extends Metric<HistogramState> {
  readonly buckets: readonly number[];

  constructor(init: HistogramInit) {
    super('histogram', init);
    const b = [...(init.buckets ?? DEFAULT_SECONDS_BUCKETS)].filter((x) => x !== Number.POSITIVE_INFINITY);
    if (b.length === 0 || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= (b[i - 1] as number)))) {
      throw new ValidationError(`histogram '${init.name}' needs finite, strictly ascending buckets`, {
        field: 'buckets',
      });
    }
    this.buckets = b;
  }

  observe(value: number, labels?: Labels): void {
    const s = this.entry(labels, () => this.empty());
    let i = this.buckets.findIndex((ub) => value <= ub);
    if (i === -1) i = this.buckets.length;
    s.value.counts[i] = (s.value.counts[i] ?? 0) + 1;
    s.value.sum += value;
    s.value.count++;
  }

  /** Cumulative counts per upper bound (last is +Inf), sum and count of one series. */
  snapshot(labels?: Labels): { buckets: Array<[number, number]>; sum: number; count: number } {
    const s = this.find(labels) ?? this.empty();
    let acc = 0;
    const bounds = [...this.buckets, Number.POSITIVE_INFINITY];
    return {
      buckets: bounds.map((ub, i) => {
        acc += s.counts[i] ?? 0;
        return [ub, acc];
      }),
      sum: s.sum,
      count: s.count,
    };
  }

  private empty(): HistogramState {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  protected renderSeries(out: string[]): void {
    // An unlabelled histogram shows its zero series before the first observation.
    if (this.series.size === 0 && this.labelNames.length === 0) this.entry(undefined, () => this.empty());
    for (const s of this.series.values()) {
      let acc = 0;
      this.buckets.forEach((ub, i) => {
        acc += s.value.counts[i] ?? 0;
        out.push(`${this.name}_bucket${this.labelText(s.labels, ['le', formatValue(ub)])} ${acc}`);
      });
      out.push(`${this.name}_bucket${this.labelText(s.labels, ['le', '+Inf'])} ${s.value.count}`);
      out.push(`${this.name}_sum${this.labelText(s.labels)} ${formatValue(s.value.sum)}`);
      out.push(`${this.name}_count${this.labelText(s.labels)} ${s.value.count}`);
    }
  }
}

/** Options of a registry. */
export interface MetricsRegistryInit {
  /** Told when a collector throws; the scrape goes on without that collector's update. */
  onCollectError?: (err: Error) => void;
}

/**
 * Holds metrics and renders them. Collectors run at every `render()`, so values that cost a
 * query (notifications by status) are computed only when scraped.
 * @example
 * const registry = new MetricsRegistry();
 * const up = registry.gauge({ name: 'weft_up', help: 'The node runs' });
 * registry.collect(() => up.set(1));
 * registry.render(); // '# HELP weft_up The node runs\n# TYPE weft_up gauge\nweft_up 1\n'
 */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Counter | Gauge | Histogram>();
  private readonly collectors = new Set<() => void>();

  constructor(private readonly init: MetricsRegistryInit = {}) {}

  /** Defines a counter; names are unique in a registry. */
  counter(init: MetricInit): Counter {
    return this.add(new Counter(init));
  }

  /** Defines a gauge. */
  gauge(init: MetricInit): Gauge {
    return this.add(new Gauge(init));
  }

  /** Defines a histogram with fixed buckets. */
  histogram(init: HistogramInit): Histogram {
    return this.add(new Histogram(init));
  }

  /** Runs `fn` before every render; returns the function that removes it. */
  collect(fn: () => void): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }

  /** The metric of that name, if defined. */
  get(name: string): Counter | Gauge | Histogram | undefined {
    return this.metrics.get(name);
  }

  /** Runs the collectors, then renders every metric in definition order, newline-terminated. */
  render(): string {
    for (const fn of this.collectors) {
      try {
        fn();
      } catch (err) {
        this.init.onCollectError?.(err instanceof Error ? err : new Error(String(err)));
      }
    }
    const lines: string[] = [];
    for (const m of this.metrics.values()) lines.push(...m.render());
    return lines.length ? `${lines.join('\n')}\n` : '';
  }

  private add<M extends Counter | Gauge | Histogram>(m: M): M {
    const clash = [
      m.name,
      ...(m.type === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : []),
    ];
    if (clash.some((n) => this.metrics.has(n))) {
      throw new ValidationError(`metric '${m.name}' is already defined`, { field: 'name' });
    }
    this.metrics.set(m.name, m);
    return m;
  }
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes HELP text: backslash and newline. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as the format spells it (`+Inf`, `-Inf`, `NaN`). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}
