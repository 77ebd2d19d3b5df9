/**
 * Clustering as the signal pipeline relies on it: on a corpus of ~500 items with known stories
 * (paraphrases by several sources, near-duplicate copies, briefings that mention two stories,
 * stories that share their main entity, singletons) pairwise precision and recall stay high;
 * near-duplicates always land together, whatever their text; a burst injected into one source
 * is detected and a steady source is not; a story seen recently is not novel; low-value
 * clusters are absorbed; the store records a cluster once however often it is recorded, and
 * retention deletes in bounded batches; 10,000 items cluster within a liveness bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Cluster,
  CLUSTER_DEFAULTS,
  clusterId,
  clusterItems,
  clusterPayload,
  clusterQuality,
  detectBurst,
  isBurst,
  isNovel,
  SignalClusterStore,
  updateBaseline,
} from '../../src/signals/cluster.js';
import { hamming } from '../../src/signals/text.js';
import type { SignalItem } from '../../src/signals/types.js';
import type { Store } from '../../src/store/index.js';
import { startTestNode } from '../helpers/node.js';
import { type CorpusItem, corpus, makeItem, pairwise, syntheticCorpus } from './corpus.js';

const HOUR = 3_600_000;

function clusterMap(clusters: readonly Cluster[]): Map<number, Cluster> {
  const m = new Map<number, Cluster>();
  for (const c of clusters) for (const it of c.items) m.set(it.id, c);
  return m;
}

test('on the corpus, pairwise precision and recall are both at least 0.85', () => {
  // Measured over 30 seeds with the defaults: precision 0.87–1.00 (the misses: the two Orion
  // Motors stories, battery recall and battery factory, joined), recall 0.94–1.00 (the misses:
  // posts that are a title alone). The bar sits under the worst seed, so the test pins the
  // method, not a lucky seed; plain single linkage (no centroid check) scored 0.57–0.79 here.
  for (const seed of [7, 11, 23]) {
    const { items } = corpus(seed);
    const clusters = clusterItems(items);
    const m = clusterMap(clusters);
    const r = pairwise(items, (id) => m.get(id)?.id ?? `missing-${id}`);
    console.log(
      `# corpus seed ${seed}: ${items.length} items, ${clusters.length} clusters, pairwise precision ${r.precision.toFixed(3)} recall ${r.recall.toFixed(3)} (${r.tp} of ${r.predicted} predicted pairs right, ${r.tp} of ${r.actual} true pairs found)`,
    );
    assert.equal(m.size, items.length, 'every item is in exactly one cluster');
    assert.ok(r.precision >= 0.85, `precision ${r.precision}`);
    assert.ok(r.recall >= 0.85, `recall ${r.recall}`);
  }
});

test('every pair of items within 3 bits of SimHash lands in one cluster', () => {
  const { items, copies } = corpus(7);
  const m = clusterMap(clusterItems(items));
  let pairs = 0;
  for (let i = 0; i < items.length; i++) {
    for (let j = i + 1; j < items.length; j++) {
      const a = items[i] as CorpusItem;
      const b = items[j] as CorpusItem;
      if (hamming(a.simhash, b.simhash) > 3) continue;
      pairs++;
      assert.equal(m.get(a.id)?.id, m.get(b.id)?.id, `${a.id} and ${b.id} are ${hamming(a.simhash, b.simhash)} bits apart`);
    }
  }
  console.log(`# ${pairs} pairs within 3 bits (${copies.length} copies made), all together`);
  assert.ok(pairs >= 30, 'the corpus has near-duplicates to check');
});

test('near-duplicates by SimHash are joined even when their texts share nothing and tags disagree', () => {
  const base = { sourceId: 's', eventId: 'e', url: '', summary: '', tags: [] as string[], publishedAt: null, fetchedAt: 0 };
  const items: SignalItem[] = [
    { ...base, id: 1, title: 'Alpha beta gamma', text: 'Alpha beta gamma delta.', simhash: 'f0f0f0f0f0f0f0f0', tags: ['x'] },
    { ...base, id: 2, title: 'Zebra yak xylophone', text: 'Walrus vole.', simhash: 'f0f0f0f0f0f0f0f7', tags: ['y'] }, // 3 bits from 1
    { ...base, id: 3, title: 'Quartz pebble', text: 'Granite.', simhash: '70f0f0f0f0f0f0f7' }, // 1 bit from 2, 4 from 1
    { ...base, id: 4, title: 'Unrelated heron', text: 'Marsh.', simhash: '0f0f0f0f0f0f0f0f' },
  ];
  const cs = clusterItems(items);
  const m = clusterMap(cs);
  assert.equal(m.get(1)?.id, m.get(2)?.id);
  assert.equal(m.get(2)?.id, m.get(3)?.id, 'near-duplicates chain: 1~2~3');
  assert.notEqual(m.get(1)?.id, m.get(4)?.id);
  assert.equal(m.get(1)?.stories, 1, 'copies of one text are one telling');
  // A thousand identical copies are one cluster, joined in one pass.
  const copies = Array.from({ length: 1000 }, (_, i) => ({ ...base, id: 100 + i, title: `copy ${i}`, text: '', simhash: '1234567890abcdef' }));
  assert.equal(clusterItems(copies).length, 1);
});

test('the order items come in does not change the clusters', () => {
  const { items } = corpus(11);
  const a = clusterItems(items).map((c) => c.id);
  const b = clusterItems([...items].reverse()).map((c) => c.id);
  assert.deepEqual(new Set(b), new Set(a));
});

test('a cluster has its central item as title, common tags and keywords, its sources and window', () => {
  const { items } = corpus(7);
  const clusters = clusterItems(items);
  const kestrel = clusters.find((c) => c.items.filter((it) => (it as CorpusItem).group === 'kestrel-cve').length > 5) as Cluster;
  assert.ok(kestrel, 'the Kestrel CVE story formed');
  assert.ok(kestrel.items.includes(kestrel.central));
  assert.equal(kestrel.title, kestrel.central.title);
  assert.match(kestrel.title, /kestrel/i);
  assert.ok(kestrel.keywords.includes('kestrel'), kestrel.keywords.join(','));
  assert.ok(kestrel.tags.length > 0 && kestrel.tags.length <= 10);
  assert.ok(kestrel.sourceIds.length >= 3);
  assert.ok(kestrel.windowStart <= kestrel.windowEnd);
  assert.equal(kestrel.id, clusterId(kestrel.items.map((it) => it.id)));
  const p = clusterPayload(kestrel);
  assert.equal(p.item_count, kestrel.items.length);
  assert.equal(p.event_ids.length, kestrel.items.length);
  assert.deepEqual(p.source_ids, kestrel.sourceIds);
  assert.equal(p.window_start, new Date(kestrel.windowStart).toISOString());
});

test('clusterId is a hash of the sorted item ids', () => {
  assert.equal(clusterId([3, 1, 2]), clusterId([1, 2, 3]));
  assert.notEqual(clusterId([1, 2]), clusterId([1, 2, 3]));
  assert.match(clusterId([1]), /^[0-9a-f]{16}$/);
});

test('low-value clusters are absorbed: singletons, copies of one text; stories told by several sources surface', () => {
  const { items } = corpus(7);
  const clusters = clusterItems(items);
  for (const c of clusters) {
    if (c.items.length === 1) assert.ok(c.absorbed, `a singleton is absorbed: ${c.title}`);
    if (c.stories >= 5 && c.sourceIds.length >= 3) assert.ok(!c.absorbed, `a story of ${c.stories} tellings by ${c.sourceIds.length} sources surfaces`);
  }
  assert.ok(clusters.filter((c) => !c.absorbed).length >= 20, 'the stories surface');
  // Five outlets republishing one wire text: syndication, not corroboration.
  const syndicated = clusterQuality({ sources: 5, stories: 1, burst: false, novelty: false });
  assert.ok(syndicated < CLUSTER_DEFAULTS.absorbBelow, `syndicated ${syndicated}`);
  assert.ok(clusterQuality({ sources: 3, stories: 3, burst: false, novelty: false }) >= CLUSTER_DEFAULTS.absorbBelow);
  assert.ok(clusterQuality({ sources: 2, stories: 2, burst: false, novelty: false }) < CLUSTER_DEFAULTS.absorbBelow, 'two sources alone are not enough');
  assert.ok(clusterQuality({ sources: 2, stories: 2, burst: false, novelty: true }) >= CLUSTER_DEFAULTS.absorbBelow, 'two sources on something new are');
  assert.ok(clusterQuality({ sources: 1, stories: 5, burst: true, novelty: false }) >= CLUSTER_DEFAULTS.absorbBelow, 'a burst of one source is');
  assert.equal(clusterQuality({ sources: 10, stories: 20, burst: true, novelty: true }), 1);
  // An item and a copy within 3 bits, by two sources: one telling, absorbed even when new.
  const byId = new Map(items.map((it) => [it.id, it]));
  const copy = items.find((it) => it.copyOf !== undefined && hamming(it.simhash, (byId.get(it.copyOf) as CorpusItem).simhash) <= 3) as CorpusItem;
  const pair = clusterItems([copy, byId.get(copy.copyOf as number) as CorpusItem]);
  assert.equal(pair.length, 1);
  assert.equal(pair[0]?.stories, 1);
  assert.equal(pair[0]?.novelty, true);
  assert.ok(pair[0]?.absorbed, `an item and its copy alone are absorbed (quality ${pair[0]?.quality})`);
});

test('the EWMA baseline and the burst test', () => {
  assert.equal(updateBaseline(null, 4), 4);
  assert.equal(updateBaseline(4, 14, 0.2), 6);
  assert.equal(updateBaseline(4, Number.NaN), 4);
  assert.equal(isBurst(12, 2), true);
  assert.equal(isBurst(12, 10), false, 'a busy source being busy');
  assert.equal(isBurst(4, 0.1), false, 'under the minimum count');
  assert.equal(isBurst(100, null), false, 'a new source has no baseline: its first poll is backlog');
  assert.equal(isBurst(7, 1, { windowHours: 3 }), false, '7 in 3 hours against 1/h is not 3× the expected 3');
  assert.equal(isBurst(5, 0.5, { windowHours: 3 }), false, '5 against an expected 1.5 is 3× but not 3σ over');
  assert.equal(isBurst(9, 1, { windowHours: 3 }), true);
  assert.deepEqual(
    detectBurst([
      { sourceId: 'wire', count: 30, windowHours: 1, baselinePerHour: 3 },
      { sourceId: 'steady', count: 5, windowHours: 1, baselinePerHour: 4 },
      { sourceId: 'new', count: 50, windowHours: 1, baselinePerHour: null },
    ]),
    new Set(['wire']),
  );
});

test('novelty: a cluster is novel when under half its tags were seen recently', () => {
  assert.equal(isNovel(['tech', 'kestrel', 'cve', 'patch'], new Set(['tech', 'kestrel'])), false);
  assert.equal(isNovel(['tech', 'kestrel', 'cve', 'patch'], ['tech']), true);
  assert.equal(isNovel([], []), false, 'no tags, no claim');
  assert.equal(isNovel(['a', 'b'], ['a'], { maxOverlap: 0.6 }), true);
});

async function withStore(fn: (store: Store, cs: SignalClusterStore) => Promise<void>): Promise<void> {
  const t = await startTestNode();
  try {
    const store = t.node.ns.store;
    await fn(store, new SignalClusterStore(store));
  } finally {
    await t.close();
  }
}

async function insertItems(store: Store, items: readonly SignalItem[]): Promise<void> {
  const ins = store.db.prepare(
    `INSERT INTO signal_items (id, source_id, guid_key, url_key, content_hash, event_id, url, title, summary, text, tags, simhash, published_at, fetched_at)
     VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  await store.write(() => {
    for (const it of items) ins.run(it.id, it.sourceId, `url:${it.url}`, `hash:${it.id}`, it.eventId, it.url, it.title, it.summary, it.text, JSON.stringify(it.tags), it.simhash, it.publishedAt, it.fetchedAt);
  });
}

async function insertSource(store: Store, id: string, baseline: number | null): Promise<void> {
  await store.write(() =>
    store.db
      .prepare('INSERT INTO signal_sources (id, url, kind, label, origin, interval_s, next_poll_at, baseline_per_hour, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(id, `https://${id}.example/feed`, 'feed', id, 'config', 900, 0, baseline, 0),
  );
}

test('a burst injected into one source is detected against its baseline; a steady source is not', async () => {
  await withStore(async (store, cs) => {
    const now = Date.UTC(2026, 2, 10, 12);
    await insertSource(store, 'steady', null);
    await insertSource(store, 'wire', null);
    // Twelve hours of history before the last one: steady posts 4 an hour, wire 2; the
    // baselines learn them hour by hour.
    let id = 1;
    const history: SignalItem[] = [];
    for (let h = 13; h >= 2; h--) {
      for (const [src, perHour] of [['steady', 4], ['wire', 2]] as const) {
        for (let k = 0; k < perHour; k++) {
          const at = now - h * HOUR + k * 60_000;
          history.push(makeItem({ id: id++, sourceId: src, title: `${src} routine item ${id}`, text: `Routine ${src} post number ${id}.`, tags: [], publishedAt: at, group: 'h' }));
        }
      }
    }
    await insertItems(store, history);
    for (let h = 13; h >= 2; h--) await cs.updateBaselines(cs.sourceRates(HOUR, now - (h - 1) * HOUR - 1), 0.3);
    const learned = new Map(cs.sourceRates(HOUR, now).map((r) => [r.sourceId, r.baselinePerHour]));
    assert.ok(Math.abs((learned.get('steady') as number) - 4) < 0.5, `steady baseline ${learned.get('steady')}`);
    assert.ok(Math.abs((learned.get('wire') as number) - 2) < 0.5, `wire baseline ${learned.get('wire')}`);

    // The last hour: steady as ever, wire fires 20 items about one story.
    const { items } = corpus(7);
    const story = items.filter((it) => it.group === 'storm-ingrid').slice(0, 12);
    const last: SignalItem[] = [];
    for (let k = 0; k < 5; k++) last.push(makeItem({ id: id++, sourceId: 'steady', title: `steady routine item ${id}`, text: `Routine steady post number ${id}.`, tags: [], publishedAt: now - 50 * 60_000 + k * 60_000, group: 'h' }));
    for (let k = 0; k < 20; k++) {
      const s = story[k % story.length] as CorpusItem;
      last.push(makeItem({ id: id++, sourceId: 'wire', title: s.title, text: `${s.text} Update ${k}.`, tags: [], publishedAt: now - 40 * 60_000 + k * 60_000, group: 'storm' }));
    }
    await insertItems(store, last);
    const rates = cs.sourceRates(HOUR, now);
    const bursts = detectBurst(rates);
    console.log(`# last hour: ${rates.map((r) => `${r.sourceId} ${r.count} (baseline ${r.baselinePerHour?.toFixed(2)}/h)`).join(', ')}; burst: ${[...bursts].join(', ')}`);
    assert.deepEqual(bursts, new Set(['wire']));

    const clusters = clusterItems(cs.unclustered(now - HOUR, 1000), { burstSources: bursts });
    const storm = clusters.find((c) => c.items.some((it) => it.sourceId === 'wire'));
    assert.ok(storm?.burst, 'the cluster of the burst is marked');
    assert.ok(clusters.filter((c) => c.items.every((it) => it.sourceId === 'steady')).every((c) => !c.burst), 'the steady source never is');
  });
});

test('the store records a cluster once, marks its items, and reads recent tags for novelty', async () => {
  await withStore(async (store, cs) => {
    const { items } = corpus(7);
    const now = Date.UTC(2026, 2, 3);
    await insertItems(store, items);
    const read = cs.unclustered(0, 10_000);
    assert.equal(read.length, items.length);
    const sample = items.find((it) => it.tags.length > 0) as CorpusItem;
    const back = read.find((it) => it.id === sample.id) as SignalItem;
    assert.deepEqual({ ...back, tags: [...back.tags] }, { id: sample.id, sourceId: sample.sourceId, eventId: sample.eventId, url: sample.url, title: sample.title, summary: sample.summary, text: sample.text, tags: [...sample.tags], simhash: sample.simhash, publishedAt: sample.publishedAt, fetchedAt: sample.fetchedAt });

    // First pass: nothing recent, so every cluster with tags is novel.
    const first = clusterItems(read, { recentTags: cs.recentTags(24, now) });
    const big = first.filter((c) => c.items.length >= 5);
    assert.ok(big.every((c) => c.novelty));
    // Record the first half of the stories.
    const recorded = big.slice(0, Math.floor(big.length / 2));
    for (const c of recorded) assert.equal(await cs.recordCluster(c, now), true);
    for (const c of recorded) assert.equal(await cs.recordCluster(c, now), false, 'recording again changes nothing');
    const rows = (store.reader.prepare('SELECT COUNT(*) AS n FROM signal_clusters').get() as { n: number }).n;
    assert.equal(rows, recorded.length);
    const c0 = recorded[0] as Cluster;
    assert.deepEqual(
      cs.members(c0.id).map((it) => it.id).sort((a, b) => a - b),
      c0.items.map((it) => it.id).sort((a, b) => a - b),
    );
    const left = cs.unclustered(0, 10_000);
    assert.equal(left.length, items.length - recorded.reduce((s, c) => s + c.items.length, 0), 'recorded items are no longer unclustered');

    // The same stories told again later are not novel; the ones never recorded still are.
    const recent = cs.recentTags(24, now + HOUR);
    const again = clusterItems(read, { recentTags: recent });
    const byId = new Map(again.map((c) => [c.id, c]));
    for (const c of recorded) assert.equal(byId.get(c.id)?.novelty, false, `${c.title} was seen`);
    const unseen = again.filter((c) => c.items.length >= 5 && !recorded.some((r) => r.id === c.id));
    assert.ok(unseen.filter((c) => c.novelty).length >= unseen.length / 2, 'most of the stories never recorded are novel');
    assert.equal(cs.recentTags(24, now + 25 * HOUR).size, 0, 'recent means recent');

    // Emitted, then synthesized.
    await cs.markEmitted(c0.id, 'evt-cluster');
    assert.deepEqual(cs.pendingSynthesis(10).map((c) => c.id), [c0.id]);
    await cs.markSynthesized(c0.id, 'evt-synth', now);
    assert.equal(cs.pendingSynthesis(10).length, 0);
    assert.equal(cs.cluster(c0.id)?.synthesisEventId, 'evt-synth');
    assert.deepEqual(cs.cluster(c0.id)?.tags, [...c0.tags]);
  });
});

test('retention strips old items to their dedup keys, deletes them ten periods later, and old clusters, in bounded batches', async () => {
  await withStore(async (store, cs) => {
    const now = Date.UTC(2026, 5, 1);
    const ancient = Array.from({ length: 25 }, (_, i) => makeItem({ id: i + 1, sourceId: 's', title: `ancient ${i}`, text: 'long gone', tags: [], publishedAt: now - 400 * 24 * HOUR, group: 'a' }));
    const old = Array.from({ length: 3 }, (_, i) => makeItem({ id: 50 + i, sourceId: 's', title: `old ${i}`, text: 'kept for dedup', tags: [], publishedAt: now - 40 * 24 * HOUR, group: 'o' }));
    const fresh = Array.from({ length: 5 }, (_, i) => makeItem({ id: 100 + i, sourceId: 's', title: `fresh ${i}`, text: 'recent', tags: [], publishedAt: now - HOUR, group: 'f' }));
    await insertItems(store, [...ancient, ...old, ...fresh]);
    const [oldCluster] = clusterItems(old.slice(0, 2));
    await cs.recordCluster(oldCluster as Cluster, now - 40 * 24 * HOUR);
    const r1 = await cs.prune(30, { now, batch: 10, maxBatches: 2 });
    assert.deepEqual(r1, { items: 20, clusters: 1, more: true });
    const r2 = await cs.prune(30, { now, batch: 10, maxBatches: 2 });
    assert.deepEqual(r2, { items: 5, clusters: 0, more: false });
    const rows = store.reader.prepare('SELECT title, text FROM signal_items ORDER BY id').all() as Array<{ title: string; text: string }>;
    assert.equal(rows.length, 8, 'the 40-day-old items stay (their keys), the 400-day-old ones are gone');
    assert.deepEqual(rows.filter((r) => r.title.startsWith('old')).map((r) => r.text), ['', '', ''], 'stripped of their text');
    assert.ok(rows.filter((r) => r.title.startsWith('fresh')).every((r) => r.text === 'recent'));
  });
});

test('10,000 items cluster within a liveness bound', () => {
  const { items } = syntheticCorpus(10_000, 1);
  const t0 = performance.now();
  const clusters = clusterItems(items);
  const ms = performance.now() - t0;
  const m = clusterMap(clusters);
  const r = pairwise(items, (id) => m.get(id)?.id ?? '');
  console.log(`# 10,000 items: ${clusters.length} clusters in ${ms.toFixed(0)} ms (precision ${r.precision.toFixed(3)}, recall ${r.recall.toFixed(3)}); npm run bench -- signals measures it`);
  // Not a timing goal: a bound that only an accidental O(n²) with a big constant would break.
  assert.ok(ms < 30_000, `${ms} ms`);
  assert.equal(m.size, items.length);
});
