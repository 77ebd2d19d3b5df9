/** The node's own metrics, on the Prometheus registry of prometheus.ts. */
import type { DeliveryStats } from '../delivery/index.js';
import type { WeftNode } from '../node/index.js';
import { AGENT_STATUSES, HUMAN_STATUSES } from '../store/index.js';
import { DEFAULT_SECONDS_BUCKETS, type MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from './prometheus.js';

/** The node's single-valued metrics: one row each, with what it reads from the node. */
const SCALAR_METRICS: ReadonlyArray<{ name: string; help: string; type: 'counter' | 'gauge'; read: (n: MetricsNode) => number | undefined }> = [
  { name: 'weft_pipeline_batches_total', help: 'Committed pipeline batches', type: 'counter', read: (n) => n.processor.stats.batches },
  { name: 'weft_pipeline_batch_errors_total', help: 'Pipeline batches that failed as a whole and were retried', type: 'counter', read: (n) => n.processor.stats.batchErrors },
  { name: 'weft_pipeline_batch_reruns_total', help: 'Pipeline batches run again with a savepoint per event after a cartridge threw in their first run', type: 'counter', read: (n) => n.processor.stats.reruns },
  { name: 'weft_bus_appended_total', help: 'Events appended to the local bus by this process', type: 'counter', read: (n) => n.bus.stats().appended },
  { name: 'weft_bus_queue_depth', help: 'Bus entries read and waiting for the pipeline (embedded bus)', type: 'gauge', read: (n) => n.bus.stats().depth },
  { name: 'weft_process_resident_memory_bytes', help: 'Resident set size of the node process', type: 'gauge', read: () => process.memoryUsage.rss() },
];

/** A delivery channel's metrics (label `channel`): one row each, with the stats field it reads (-1: not known). */
const DELIVERY_METRICS: ReadonlyArray<{ name: string; help: string; type: 'counter' | 'gauge'; read: (s: DeliveryStats) => number }> = [
  { name: 'weft_delivery_sent_total', help: 'Notification deliveries sent, by channel', type: 'counter', read: (s) => s.sent },
  { name: 'weft_delivery_failures_total', help: 'Notification deliveries given up (refused, or attempts exhausted), by channel', type: 'counter', read: (s) => s.failed },
  { name: 'weft_delivery_retries_total', help: 'Delivery attempts that failed and will be retried, by channel', type: 'counter', read: (s) => s.retries },
  { name: 'weft_delivery_rate_limited_total', help: 'Delivery attempts the channel answered with a rate limit (429), by channel', type: 'counter', read: (s) => s.rateLimited },
  { name: 'weft_delivery_pending', help: 'Deliveries waiting to be sent (durable backlog), by channel', type: 'gauge', read: (s) => s.pending },
];

/** What the node metrics read from a node: a WeftNode satisfies it. */
export type MetricsNode = Pick<WeftNode, 'ns' | 'bus' | 'pipeline' | 'processor' | 'onCommitted'>;

/** Something that reports delivery counters (a Telegram channel satisfies it). */
export interface DeliveryStatsSource {
  stats(): DeliveryStats;
}

/** Options of {@link nodeMetrics}. */
export interface NodeMetricsOptions {
  /** Delivery channels whose counters are exported. More can be added with `addDelivery`. */
  deliveries?: readonly DeliveryStatsSource[];
  /** Batch latency buckets in seconds (default {@link DEFAULT_SECONDS_BUCKETS}). */
  latencyBuckets?: readonly number[];
}

/** The node's metrics, as the HTTP layer uses them. */
export interface NodeMetrics {
  readonly registry: MetricsRegistry;
  /** The body of GET /metrics: runs the scrape-time collectors and renders. */
  render(): string;
  /** The `Content-Type` for that body. */
  readonly contentType: string;
  /** Exports another delivery channel's counters. */
  addDelivery(source: DeliveryStatsSource): void;
  /** Stops listening to committed batches. Idempotent. */
  close(): void;
}

/**
 * Defines the node's metrics on `registry` and keeps them current: the batch latency
 * histogram from every committed batch, everything else read when scraped (per-stage
 * events in/out, pipeline outcomes, bus depth, notifications by status from the reader
 * connection, delivery counters). A collector that throws (the store closed during shutdown)
 * is reported to the registry's `onCollectError` and the rest of the scrape still renders.
 * @example
 * const metrics = nodeMetrics(new MetricsRegistry(), node, { deliveries: [telegram] });
 * // GET /metrics:
 * reply.header('content-type', metrics.contentType).send(metrics.render());
 */
export function nodeMetrics(
  registry: MetricsRegistry,
  node: MetricsNode,
  opts: NodeMetricsOptions = {},
): NodeMetrics {
  const deliveries = new Set<DeliveryStatsSource>(opts.deliveries ?? []);

  const counter = (name: string, help: string, label: string) => registry.counter({ name, help, labelNames: [label] });
  const stageIn = counter('weft_pipeline_stage_events_in_total', 'Events each pipeline stage (cartridge) received, in committed batches', 'stage');
  const stageOut = counter(
    'weft_pipeline_stage_events_out_total',
    'Events each pipeline stage passed on (neither dropped nor failed), in committed batches',
    'stage',
  );
  const outcomes = counter('weft_pipeline_events_total', 'Events the pipeline processed, by outcome', 'outcome');
  const latency = registry.histogram({
    name: 'weft_pipeline_batch_duration_seconds',
    help: 'Time from the start of a pipeline batch to its commit',
    buckets: opts.latencyBuckets ?? DEFAULT_SECONDS_BUCKETS,
  });
  const batchSize = registry.histogram({
    name: 'weft_pipeline_batch_entries',
    help: 'Bus entries per committed pipeline batch',
    buckets: [1, 4, 16, 64, 256, 1024, 4096],
  });
  const notifications = registry.gauge({
    name: 'weft_notifications',
    help: 'Stored notifications by human and agent status',
    labelNames: ['human_status', 'agent_status'],
  });

  const define = (m: { name: string; help: string; type: 'counter' | 'gauge' }, labelNames: string[] = []) =>
    m.type === 'counter' ? registry.counter({ name: m.name, help: m.help, labelNames }) : registry.gauge({ name: m.name, help: m.help, labelNames });
  const scalars = SCALAR_METRICS.map((m) => ({ m, metric: define(m) }));
  const perChannel = DELIVERY_METRICS.map((m) => ({ m, metric: define(m, ['channel']) }));

  const unsubscribe = node.onCommitted((b) => {
    latency.observe(b.durationMs / 1000);
    batchSize.observe(b.entries);
  });

  let countByStatus: { all(): unknown[] } | undefined;

  const collectors = [
    registry.collect(() => {
      const totals = node.pipeline.invocationTotals;
      const order = node.pipeline.order;
      const stats = node.processor.stats;
      order.forEach((stage, i) => {
        stageIn.set(totals.get(stage) ?? 0, { stage });
        // What stage i passed on is what stage i+1 received; the last stage's is what passed the pipeline.
        const next = order[i + 1];
        stageOut.set(next === undefined ? stats.passed : (totals.get(next) ?? 0), { stage });
      });
      for (const k of ['processed', 'passed', 'dropped', 'failed', 'rejected', 'duplicates'] as const) {
        outcomes.set(stats[k], { outcome: k });
      }
    }),
    registry.collect(() => {
      for (const { m, metric } of scalars) {
        const v = m.read(node);
        if (v !== undefined) metric.set(v);
      }
    }),
    registry.collect(() => {
      if (node.ns.store.isClosed) return;
      countByStatus ??= node.ns.store.reader.prepare(
        'SELECT human_status AS h, agent_status AS a, COUNT(*) AS n FROM notifications GROUP BY human_status, agent_status',
      );
      const seen = new Map<string, number>();
      for (const r of countByStatus.all() as Array<{ h: string; a: string; n: number }>)
        seen.set(`${r.h}/${r.a}`, r.n);
      notifications.reset();
      for (const h of HUMAN_STATUSES) {
        for (const a of AGENT_STATUSES)
          notifications.set(seen.get(`${h}/${a}`) ?? 0, { human_status: h, agent_status: a });
      }
    }),
    registry.collect(() => {
      for (const d of deliveries) {
        const s = d.stats();
        for (const { m, metric } of perChannel) {
          const v = m.read(s);
          if (v >= 0) metric.set(v, { channel: s.channel });
        }
      }
    }),
  ];

  let closed = false;
  return {
    registry,
    contentType: PROMETHEUS_CONTENT_TYPE,
    render: () => registry.render(),
    addDelivery: (source) => void deliveries.add(source),
    close: () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const remove of collectors) remove();
    },
  };
}
