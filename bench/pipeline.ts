/**
 * Core pipeline benchmark: emit → dedup → notification projection → committed notification
 * row, in embedded mode and in Redis mode, with the raw better-sqlite3 batched insert of the
 * same rows as the ceiling, and emit→notification latency at a steady 1,000 events/s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDefaultCatalog } from '../src/catalog/index.js';
import { createNode, type NodeInit } from '../src/node/index.js';
import { openNodeStore } from '../src/store/index.js';
import { systemClock } from '../src/util/clock.js';
import { silentLogger } from '../src/util/logger.js';
import { TestRedis } from '../test/helpers/redis.js';
import { type BenchSection, driveThroughput, fmt, percentile } from './harness.js';

const TYPE = 'domain.software-development.planning.todo.created';
const N = Number(process.env.WEFT_BENCH_EVENTS ?? 100_000);

function input(i: number, run: string) {
  return { event: TYPE, payload: { slug: `${run}-${i}`, title: `Todo number ${i}`, author: 'bench' }, entity: `todo/${i}` };
}

async function throughput(init: Omit<NodeInit, 'dataDir' | 'computer'>, run: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-'));
  const node = await createNode({ dataDir: dir, computer: 'bench', ...init });
  await node.start();
  const rate = await driveThroughput(node, N, (j) => input(j, run), (b) => b.changes.length);
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
  return rate;
}

/** The ceiling: the same notification rows, inserted raw in batches of 512 per transaction. */
function rawInsertCeiling(): number {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-raw-'));
  const ns = openNodeStore({ path: join(dir, 'weft.db') }, { clock: systemClock, logger: silentLogger });
  const db = ns.store.db;
  const stmt = db.prepare(
    `INSERT INTO notifications (event_id, event_type, level, domain, visibility, entity, source, source_computer,
      description, payload, idempotency_key, group_key, actionable, created_at, updated_at)
     VALUES (?, ?, 2, 'software-development', 'local', ?, 'weft@bench', 'bench', 'A new work item (todo) was created', ?, ?, ?, 0, ?, ?)`,
  );
  const now = new Date().toISOString();
  const rows = Array.from({ length: N }, (_, i) => {
    const p = input(i, 'raw').payload;
    return [
      `0190${String(i).padStart(8, '0')}-0000-7000-8000-000000000000`,
      TYPE,
      `todo/${i}`,
      JSON.stringify(p),
      `${TYPE}:${p.slug}`,
      `software-development:slug=${p.slug}`,
      now,
      now,
    ];
  });
  const insertBatch = db.transaction((batch: unknown[][]) => {
    for (const r of batch) stmt.run(...r);
  });
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += 512) insertBatch(rows.slice(i, i + 512));
  const secs = (performance.now() - t0) / 1000;
  db.close();
  rmSync(dir, { recursive: true, force: true });
  void createDefaultCatalog;
  return N / secs;
}

async function latency(init: Omit<NodeInit, 'dataDir' | 'computer'>, run: string, count = 3000): Promise<{ p50: number; p99: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-lat-'));
  const node = await createNode({ dataDir: dir, computer: 'bench', ...init });
  await node.start();
  const started = new Map<string, number>();
  const lat: number[] = [];
  node.onCommitted((b) => {
    const t = performance.now();
    for (const e of b.passed) {
      const s = started.get(e.payload.slug as string);
      if (s !== undefined) lat.push(t - s);
    }
  });
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const due = t0 + i; // 1,000 events/s
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const inp = input(i, run);
    started.set(inp.payload.slug, performance.now());
    void node.emit(inp);
  }
  const deadline = Date.now() + 10_000;
  while (lat.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

export default async function pipelineBench(): Promise<BenchSection> {
  const ceiling = rawInsertCeiling();
  const embedded = await throughput({}, 'emb');
  const redis = await TestRedis.start();
  let redisRate = Number.NaN;
  let redisLat = { p50: Number.NaN, p99: Number.NaN };
  try {
    redisRate = await throughput({ redis: { url: redis.url, stream: 'bench:tp' } }, 'red');
    redisLat = await latency({ redis: { url: redis.url, stream: 'bench:lat' } }, 'redlat');
  } finally {
    await redis.stop();
  }
  const embLat = await latency({}, 'emblat');
  const rows = [
    { measure: 'raw SQLite batched insert of the same rows (ceiling)', value: `${fmt(ceiling)} rows/s` },
    { measure: 'embedded: emit → pipeline → notification', value: `${fmt(embedded)} events/s (${fmt((embedded / ceiling) * 100, 1)}% of ceiling)` },
    { measure: 'redis: emit → pipeline → notification', value: `${fmt(redisRate)} events/s (${fmt((redisRate / ceiling) * 100, 1)}% of ceiling)` },
    { measure: 'embedded latency at 1,000 events/s', value: `p50 ${fmt(embLat.p50, 2)} ms, p99 ${fmt(embLat.p99, 2)} ms` },
    { measure: 'redis latency at 1,000 events/s', value: `p50 ${fmt(redisLat.p50, 2)} ms, p99 ${fmt(redisLat.p99, 2)} ms` },
  ];
  return {
    title: `Core pipeline (${fmt(N)} events, two stages: dedup + notification projection)`,
    rows,
    results: {
      events: N,
      ceilingRowsPerSec: ceiling,
      embeddedEventsPerSec: embedded,
      embeddedRatio: embedded / ceiling,
      redisEventsPerSec: redisRate,
      redisRatio: redisRate / ceiling,
      embeddedLatencyMs: embLat,
      redisLatencyMs: redisLat,
    },
  };
}
