/**
 * `npm run bench -- signals`: what the signal pipeline costs.
 * - Ingest: 20 local RSS feeds of 500 items each (HTTP on 127.0.0.1), polled by the signal
 *   service into committed `signal.ingest.received` events: items per second, from the first
 *   request to the last event committed. The ceiling in the same run: parsing the same feed
 *   bytes alone (no HTTP, no dedup, no events).
 * - Clustering 10,000 items (bench/signals-cluster.ts), median of 3.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { assembleNode } from '../src/daemon/assemble.js';
import { createSignalService, INGEST_SOURCE, parseFeed } from '../src/signals/index.js';
import { silentLogger } from '../src/util/index.js';
import { tempDir } from '../test/helpers/tmp.js';
import { type BenchSection, fmt } from './harness.js';
import { clusterBench } from './signals-cluster.js';

const FEEDS = Number(process.env.WEFT_SIGNALS_FEEDS ?? 20);
const ITEMS = Number(process.env.WEFT_SIGNALS_ITEMS ?? 500);
const WORDS = 'planner query database release cluster kernel compiler browser protocol storage network latency index cache replica shard schema vector model token'.split(' ');

function feedXml(f: number): string {
  const items: string[] = [];
  for (let i = 0; i < ITEMS; i++) {
    const w = (k: number) => WORDS[(f * 7 + i * 3 + k) % WORDS.length];
    items.push(
      `<item><title>Feed ${f} item ${i}: ${w(0)} ${w(1)} ${w(2)} news</title><link>http://feed${f}.example/items/${i}</link><guid>http://feed${f}.example/items/${i}</guid><description>&lt;p&gt;The ${w(3)} team shipped a ${w(4)} change to the ${w(5)} layer, item ${i} of feed ${f}. Users see faster ${w(6)} handling.&lt;/p&gt;</description><pubDate>Fri, 04 Dec 2026 ${String(i % 24).padStart(2, '0')}:00:00 GMT</pubDate><category>${w(7)}</category></item>`,
    );
  }
  return `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Feed ${f}</title><link>http://feed${f}.example/</link>${items.join('')}</channel></rss>`;
}

export default async function signalsBench(): Promise<BenchSection> {
  const rows: BenchSection['rows'] = [];
  const results: Record<string, unknown> = {};
  const t = tempDir('weft-bench-signals-');
  const bodies = Array.from({ length: FEEDS }, (_, f) => Buffer.from(feedXml(f)));
  const server = createServer((req, res) => {
    const m = /^\/feed(\d+)\.xml$/.exec(req.url ?? '');
    const body = m ? bodies[Number(m[1])] : undefined;
    if (!body) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('content-type', 'application/rss+xml');
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    // The ceiling: the same bytes parsed, nothing else.
    const p0 = performance.now();
    let parsed = 0;
    for (const b of bodies) parsed += parseFeed(new Uint8Array(b)).items.length;
    const parseMs = performance.now() - p0;
    const ceiling = parsed / (parseMs / 1000);

    const dataDir = join(t.dir, 'node');
    mkdirSync(dataDir, { recursive: true });
    const node = await assembleNode({ dataDir, computer: 'bench', system: { trust: { overrides: { [INGEST_SOURCE]: { rate: false } } } } });
    await node.start();
    const n = node.node;
    const service = createSignalService(
      { sources: bodies.map((_, f) => ({ type: 'rss', url: `${base}/feed${f}.xml`, label: `feed${f}` })), fetcher: { perHost: 4 }, clusterIntervalMs: 86_400_000 },
      { store: n.ns.store, clock: n.clock, logger: silentLogger, emitMany: (inputs) => n.emitMany(inputs) },
    );
    // Started for its sources; the timer's first poll is raced by ours and finds nothing new.
    const t0 = performance.now();
    await service.start();
    const polls = await service.pollNow();
    await n.idle(600_000);
    const ms = performance.now() - t0;
    const admitted = polls.reduce((a, p) => a + p.admitted, 0);
    const committed = n.ns.log.list({ type: 'signal.ingest.received', limit: 1 }).length > 0 ? (n.ns.store.reader.prepare("SELECT COUNT(*) FROM events WHERE event = 'signal.ingest.received'").pluck().get() as number) : 0;
    await service.stop();
    await node.stop();
    const perSec = committed / (ms / 1000);
    results.ingest = { feeds: FEEDS, itemsPerFeed: ITEMS, admitted, committed, ms, itemsPerSec: perSec, parseOnlyItemsPerSec: ceiling };
    rows.push({ measure: `parse only, the same ${fmt(FEEDS)} feeds × ${fmt(ITEMS)} items (ceiling, same run)`, value: `${fmt(ceiling)} items/s`, goal: '', verdict: '' });
    rows.push({
      measure: `ingest: ${fmt(FEEDS)} local feeds polled over HTTP → deduplicated → committed signal.ingest.received`,
      value: `${fmt(perSec)} items/s (${fmt(committed)} items in ${fmt(ms)} ms; ${fmt((perSec / ceiling) * 100, 1)}% of parse only)`,
      goal: '',
      verdict: '',
    });
    const cluster = await clusterBench();
    results.cluster = cluster;
    for (const r of cluster) rows.push({ measure: r.measure, value: r.value, goal: r.goal, verdict: r.verdict });
  } finally {
    await new Promise((r) => server.close(r));
    t.cleanup();
  }
  return { title: 'Signals: ingest from local feeds, clustering', rows, results };
}
