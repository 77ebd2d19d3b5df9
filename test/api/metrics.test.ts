/**
 * The Prometheus registry renders valid text exposition, and a real node's metrics follow
 * what it did (stages, batches, notifications by status, delivery counters).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MetricsRegistry,
  nodeMetrics,
  PROMETHEUS_CONTENT_TYPE,
} from '../../src/api/index.js';
import { createNode } from '../../src/node/index.js';
import { ValidationError } from '../../src/errors/index.js';
import { telegramDelivery } from '../../src/delivery/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeBotApi } from '../helpers/fake-bot-api.js';
import { tempDir } from '../helpers/tmp.js';

const HELP = /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/;
const TYPE = /^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$/;
const LABEL_VALUE = String.raw`"(?:[^"\\\n]|\\[\\"n])*"`;
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE}`;
const SAMPLE = new RegExp(
  String.raw`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{${LABEL}(,${LABEL})*\})? (NaN|[+-]Inf|-?\d+(\.\d+)?(e[+-]?\d+)?)$`,
);

/** Checks every line, and that each sample belongs to the family declared above it. */
function assertExposition(text: string): Map<string, string> {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const types = new Map<string, string>();
  let family = '';
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      assert.match(line, HELP);
      family = line.split(' ')[2] as string;
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      assert.match(line, TYPE);
      const [, , name, type] = line.split(' ');
      assert.equal(name, family, 'TYPE follows its HELP');
      assert.ok(!types.has(name as string), `${name} declared once`);
      types.set(name as string, type as string);
      continue;
    }
    assert.match(line, SAMPLE, `sample line: ${line}`);
    const name = line.split(/[{ ]/)[0] as string;
    const ok =
      types.get(family) === 'histogram'
        ? [`${family}_bucket`, `${family}_sum`, `${family}_count`].includes(name)
        : name === family;
    assert.ok(ok, `${name} belongs to ${family}`);
  }
  return types;
}

/** The value of the sample written exactly as `series` (name plus label text). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('should render counters, gauges and histograms in valid exposition format', () => {
  const r = new MetricsRegistry();
  const c = r.counter({
    name: 'demo_requests_total',
    help: 'Requests\nby route',
    labelNames: ['route', 'code'],
  });
  const g = r.gauge({ name: 'demo_temperature', help: 'Temperature' });
  const h = r.histogram({
    name: 'demo_latency_seconds',
    help: 'Latency',
    buckets: [0.1, 1],
    labelNames: ['op'],
  });
  r.counter({ name: 'demo_unused_total', help: 'Never touched' });
  c.inc(1, { route: '/a', code: 200 });
  c.inc(2, { route: '/a', code: 200 });
  c.inc(1, { route: '/b', code: 500 });
  g.set(-3.5);
  g.set(Number.POSITIVE_INFINITY);
  h.observe(0.05, { op: 'read' });

  const text = r.render();
  const types = assertExposition(text);
  assert.deepEqual(Object.fromEntries(types), {
    demo_requests_total: 'counter',
    demo_temperature: 'gauge',
    demo_latency_seconds: 'histogram',
    demo_unused_total: 'counter',
  });
  assert.ok(text.includes('# HELP demo_requests_total Requests\\nby route\n'), 'HELP newline escaped');
  assert.equal(sample(text, 'demo_requests_total{route="/a",code="200"}'), 3);
  assert.equal(sample(text, 'demo_requests_total{route="/b",code="500"}'), 1);
  assert.ok(text.includes('demo_temperature +Inf\n'));
  assert.equal(sample(text, 'demo_unused_total'), 0);
  assert.equal(PROMETHEUS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8');
});

test('should render histogram buckets cumulatively with +Inf equal to the count', () => {
  const r = new MetricsRegistry();
  const h = r.histogram({ name: 'demo_seconds', help: 'Demo', buckets: [0.01, 0.1, 1] });
  for (const v of [0.005, 0.01, 0.05, 0.5, 0.7, 3, 30]) h.observe(v);
  const text = r.render();
  assertExposition(text);
  const buckets = ['0.01', '0.1', '1', '+Inf'].map((le) => sample(text, `demo_seconds_bucket{le="${le}"}`));
  assert.deepEqual(buckets, [2, 3, 5, 7]);
  for (let i = 1; i < buckets.length; i++) assert.ok((buckets[i] as number) >= (buckets[i - 1] as number));
  assert.equal(sample(text, 'demo_seconds_count'), 7);
  assert.ok(Math.abs((sample(text, 'demo_seconds_sum') ?? 0) - 34.265) < 1e-9);
  assert.deepEqual(h.snapshot().buckets, [
    [0.01, 2],
    [0.1, 3],
    [1, 5],
    [Number.POSITIVE_INFINITY, 7],
  ]);
  // Bucket lines come before _sum and _count, and le is the last label.
  const labelled = new MetricsRegistry();
  labelled.histogram({ name: 'demo_l', help: 'L', buckets: [1], labelNames: ['op'] }).observe(2, { op: 'w' });
  assert.equal(
    labelled.render(),
    [
      '# HELP demo_l L',
      '# TYPE demo_l histogram',
      'demo_l_bucket{op="w",le="1"} 0',
      'demo_l_bucket{op="w",le="+Inf"} 1',
      'demo_l_sum{op="w"} 2',
      'demo_l_count{op="w"} 1',
      '',
    ].join('\n'),
  );
});

test('should escape backslash, double quote and newline in label values', () => {
  const r = new MetricsRegistry();
  const c = r.counter({ name: 'demo_total', help: 'Demo', labelNames: ['path'] });
  c.inc(1, { path: 'C:\\dir\\"quoted"\nnext' });
  const text = r.render();
  assertExposition(text);
  assert.ok(text.includes('demo_total{path="C:\\\\dir\\\\\\"quoted\\"\\nnext"} 1\n'), text);
});

test('should refuse bad names, wrong labels, a falling counter and a duplicate metric', () => {
  const r = new MetricsRegistry();
  assert.throws(() => r.counter({ name: '1bad', help: 'x' }), ValidationError);
  assert.throws(
    () => r.counter({ name: 'ok_total', help: 'x', labelNames: ['__reserved'] }),
    ValidationError,
  );
  assert.throws(() => r.histogram({ name: 'h', help: 'x', labelNames: ['le'] }), ValidationError);
  assert.throws(() => r.histogram({ name: 'h2', help: 'x', buckets: [1, 1] }), ValidationError);
  const c = r.counter({ name: 'good_total', help: 'x', labelNames: ['a'] });
  assert.throws(() => c.inc(1, { b: 'x' }), ValidationError);
  assert.throws(() => c.inc(1), ValidationError);
  assert.throws(() => c.inc(-1, { a: 'x' }), ValidationError);
  assert.throws(() => r.gauge({ name: 'good_total', help: 'again' }), ValidationError);
});

test('should keep rendering when one collector throws', () => {
  const errors: string[] = [];
  const r = new MetricsRegistry({ onCollectError: (e) => errors.push(e.message) });
  const g = r.gauge({ name: 'demo_ok', help: 'ok' });
  r.collect(() => {
    throw new Error('store closed');
  });
  r.collect(() => g.set(1));
  assert.equal(sample(r.render(), 'demo_ok'), 1);
  assert.deepEqual(errors, ['store closed']);
});

test("should export a node's stages, batch latency, notifications by status and delivery failures", async () => {
  const t = tempDir('weft-metrics-');
  const node = await createNode({ dataDir: t.dir, computer: 'test' });
  // A real Telegram channel against a fake Bot API that refuses the first message for good.
  const bot = new FakeBotApi(systemClock);
  await bot.start();
  bot.script = ['400'];
  const delivery = telegramDelivery({ botToken: '123456:TEST', chatId: 42, minLevel: 0, baseUrl: bot.url }, { ns: node.ns, clock: systemClock, logger: silentLogger });
  const metrics = nodeMetrics(new MetricsRegistry(), node, { deliveries: [delivery] });
  try {
    await node.start();
    node.onCommitted((b) => void delivery.enqueue(b.changes));
    delivery.start();
    await node.emitMany([
      { event: 'system.worker.crashed', payload: { worker: 'a', error: 'x', restarts: 1 } },
      { event: 'system.worker.crashed', payload: { worker: 'b', error: 'y', restarts: 1 } },
      { event: 'system.worker.crashed', payload: { worker: 'c', error: 'z', restarts: 1 } },
    ]);
    assert.ok(await node.idle());
    const first = node.ns.notifications.list().items[0];
    assert.ok(first);
    await node.ns.notifications.markSeen(first.id);
    await node.ns.notifications.claim(first.id, 'agent-1');

    for (let i = 0; i < 400 && delivery.stats().sent + delivery.stats().failed < 3; i++) await new Promise((r) => setTimeout(r, 25));
    const text = metrics.render();
    assertExposition(text);
    assert.equal(metrics.contentType, PROMETHEUS_CONTENT_TYPE);

    const stages = node.pipeline.order;
    const firstStage = stages[0] as string;
    const lastStage = stages[stages.length - 1] as string;
    assert.equal(sample(text, `weft_pipeline_stage_events_in_total{stage="${firstStage}"}`), 3);
    assert.equal(sample(text, `weft_pipeline_stage_events_out_total{stage="${lastStage}"}`), 3);
    assert.equal(sample(text, 'weft_pipeline_events_total{outcome="passed"}'), 3);

    const batches = sample(text, 'weft_pipeline_batch_duration_seconds_count') ?? 0;
    assert.ok(batches >= 1, 'a committed batch was observed');
    assert.equal(sample(text, 'weft_pipeline_batch_duration_seconds_bucket{le="+Inf"}'), batches);
    assert.equal(sample(text, 'weft_pipeline_batches_total'), batches);

    assert.equal(sample(text, 'weft_notifications{human_status="unseen",agent_status="none"}'), 2);
    assert.equal(sample(text, 'weft_notifications{human_status="seen",agent_status="claimed"}'), 1);
    assert.equal(sample(text, 'weft_notifications{human_status="seen",agent_status="resolved"}'), 0);

    const st = delivery.stats();
    assert.ok(st.failed >= 1 && st.sent >= 1, JSON.stringify(st));
    assert.equal(sample(text, 'weft_delivery_failures_total{channel="telegram"}'), st.failed);
    assert.equal(sample(text, 'weft_delivery_sent_total{channel="telegram"}'), st.sent);
    assert.ok(sample(text, 'weft_bus_appended_total') !== undefined);
    assert.ok(sample(text, 'weft_bus_queue_depth') !== undefined);
  } finally {
    await delivery.stop();
    await bot.stop();
    await node.stop();
    // After the store closed a scrape still answers (notifications keep their last counts).
    assertExposition(metrics.render());
    metrics.close();
    t.cleanup();
  }
});
