/**
 * Clustering of ingested items (`signal.cluster.formed`), with no model and no network:
 * near-duplicates by SimHash, then stories by text similarity (TF-IDF cosine over content
 * terms) helped by tag overlap, joined with union-find; burst (a source's count in a window
 * against its EWMA baseline), novelty (a cluster's tags against recent clusters' tags) and a
 * quality score below which a cluster is absorbed rather than surfaced. `SignalClusterStore`
 * reads and writes the signal_items and signal_clusters tables (migration 10).
 *
 * Why not TeleClaude's way: it groups by "at least one shared tag", which merges everything a
 * source tags alike (a source's own tags are on all its items), then refines by embeddings an
 * AI must provide, comparing every pair of a group (O(n²)); with no embeddings (its default
 * client has none) the tag groups stand as they are. Here tags only lower the text-similarity
 * bar, never join items on their own, and candidate pairs come from an inverted index.
 */
import { createHash } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { Store } from '../store/index.js';
import { commonWordDamping, contentTerms, isSimhash, popcount32, simhash64, simhashHalves } from './text.js';
import type { ClusterPayload, SignalItem } from './types.js';

/** Options of `clusterItems`; every one has a default (see `CLUSTER_DEFAULTS`). */
export interface ClusterOptions {
  /** SimHash Hamming distance at or under which two items are near-duplicates, always clustered together. Default 3. */
  nearDuplicateDistance?: number;
  /** Cosine similarity of TF-IDF term vectors at or over which two items are one story. Default 0.38. */
  textThreshold?: number;
  /** Tag Jaccard at or over which the lower `tagTextThreshold` applies. Default 0.6. */
  tagThreshold?: number;
  /** Cosine at or over which two items whose tags overlap enough are one story. Default 0.34. */
  tagTextThreshold?: number;
  /** Terms kept per item (the highest TF-IDF weights). Default 24. */
  maxTerms?: number;
  /**
   * A term in more items than this (or than `commonTermShare` of the batch, if more) says
   * nothing about which story an item belongs to and is left out; it also bounds the cost.
   * Default 64.
   */
  commonTermCap?: number;
  /** See `commonTermCap`. Default 0.05. */
  commonTermShare?: number;
  /** Similar items after it each item links to, the most similar first (bounds a big story's cost). Default 32. */
  maxNeighbors?: number;
  /** Characters of an item's text read (title and summary are read whole). Default 4000. */
  maxTextChars?: number;
  /** Sources in a burst (see `detectBurst`). */
  burstSources?: ReadonlySet<string> | readonly string[];
  /** Items of one bursting source a cluster must hold to be a burst. Default 2. */
  burstMinItems?: number;
  /** Tags of clusters formed recently (see `SignalClusterStore.recentTags`); none: every cluster with tags is novel. */
  recentTags?: ReadonlySet<string> | readonly string[];
  /** Share of a cluster's tags seen recently under which it is novel. Default 0.5. */
  noveltyMaxOverlap?: number;
  /** Quality under which a cluster is absorbed (recorded, not surfaced). Default 0.3. */
  absorbBelow?: number;
}

/**
 * Defaults of `clusterItems`, tuned on the test corpus (test/signals/corpus.ts: 25 stories told
 * by 12 sources in paraphrase, near-duplicate copies, briefings that mention a second story,
 * stories that share their main entity with another, singletons) over 10 seeds. Text cosine
 * 0.38 sits between 0.34 (recall 0.99, precision 0.95) and 0.42 (precision 0.99, recall 0.95).
 * Tag overlap (tags as ingest makes them: the source's, the feed's categories, five keywords)
 * added at most 0.006 recall at any setting tried and cost up to 0.2 precision (stories that
 * share an entity share categories and keywords too), so it is strict: a tag Jaccard of 0.6
 * lowers the bar to 0.34 only.
 */
export const CLUSTER_DEFAULTS: Readonly<Resolved> = {
  nearDuplicateDistance: 3,
  textThreshold: 0.38,
  tagThreshold: 0.6,
  tagTextThreshold: 0.34,
  maxTerms: 24,
  commonTermCap: 64,
  commonTermShare: 0.05,
  maxNeighbors: 32,
  maxTextChars: 4000,
  burstMinItems: 2,
  noveltyMaxOverlap: 0.5,
  absorbBelow: 0.3,
};

/** A group of items that tell one story, as `clusterItems` forms it. */
export interface Cluster {
  /** Hash of the sorted item ids (16 hex digits): the same items always give the same id. */
  readonly id: string;
  /** Oldest first (published, else fetched). */
  readonly items: readonly SignalItem[];
  /** The item closest to the cluster's centroid. */
  readonly central: SignalItem;
  /** The central item's title. */
  readonly title: string;
  /** Tags most of its items carry, then its top keywords; at most 10. */
  readonly tags: readonly string[];
  /** Terms that weigh most in the cluster (surface forms), at most 5. */
  readonly keywords: readonly string[];
  /** Distinct sources, sorted. */
  readonly sourceIds: readonly string[];
  /** Items once near-duplicates are counted as one: the distinct tellings of the story. */
  readonly stories: number;
  readonly burst: boolean;
  readonly novelty: boolean;
  /** 0..1, see `clusterQuality`. */
  readonly quality: number;
  /** Quality under the threshold: recorded, not surfaced. */
  readonly absorbed: boolean;
  /** Earliest and latest item time (published, else fetched), epoch ms. */
  readonly windowStart: number;
  readonly windowEnd: number;
}

/**
 * Groups items into stories. Pure: the same items (in any order) and options give the same
 * clusters.
 * 1. Near-duplicates: items whose SimHashes are within `nearDuplicateDistance` bits are joined,
 *    always. Candidates come from the pigeonhole principle: split into 4 bands of 16 bits, two
 *    hashes within 3 bits agree on a whole band, so only hashes sharing a band value are
 *    compared (equal hashes are joined first, in one pass).
 * 2. Stories: each item's content terms (title counted twice, summary, the start of its text),
 *    stemmed, stopwords out, weighted (1 + ln tf) · idf over the batch with very common words
 *    damped, the top `maxTerms` kept and the vector normalised. Pairs come from an inverted
 *    index of terms, their cosine accumulated term by term; a pair at or over `textThreshold`
 *    is a link, and so is one at or over `tagTextThreshold` whose tags' Jaccard is at or over
 *    `tagThreshold`. Links are taken strongest first, and two groups join only when their
 *    centroids are as similar as the link had to be: plain single linkage (TeleClaude's
 *    union-find) lets one item that mentions two stories, a briefing, chain both into one.
 *    Cosine of TF-IDF rather than Jaccard of keyword sets or MinHash: paraphrases of a story
 *    share its rare words (names, products, places) and little else, and TF-IDF weighs exactly
 *    those; MinHash estimates unweighted Jaccard with a variance too high for texts of a few
 *    dozen words, and would need an exact check anyway.
 *
 * Cost, for n items: O(n) to hash-group equal SimHashes and O(n · 4 · b) to compare within
 * band buckets (b: distinct hashes sharing a band value, ~0 for unrelated items); O(Σ df²) ≤
 * O(n · maxTerms · cap) to find links, cap = max(commonTermCap, commonTermShare · n) bounding
 * every term's postings; O(E log E) to order the E ≤ n · maxNeighbors links; merges add
 * centroids smaller into larger, O(n · maxTerms · log n). 10,000 items take about half a second
 * in stories of ~10, one second in 25 stories of ~400 (`npm run bench -- signals`).
 * @example
 * const clusters = clusterItems(store.unclustered(since, 5000), { burstSources: detectBurst(store.sourceRates(3_600_000)), recentTags: store.recentTags(24) });
 * for (const c of clusters) if (!c.absorbed && c.items.length > 1) emit(clusterPayload(c));
 */
export function clusterItems(input: readonly SignalItem[], opts: ClusterOptions = {}): Cluster[] {
  const o = { ...CLUSTER_DEFAULTS, ...definedOnly(opts) };
  // By id, so the order items come in never changes the result.
  const items = [...input].sort((a, b) => a.id - b.id);
  const n = items.length;
  if (n === 0) return [];
  const uf = new UnionFind(n);
  const dup = new UnionFind(n);
  joinNearDuplicates(items, o.nearDuplicateDistance, uf, dup);
  const vectors = termVectors(items, o);
  joinSimilar(items, vectors, o, uf);

  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const r = uf.find(i);
    const g = groups.get(r);
    if (g) g.push(i);
    else groups.set(r, [i]);
  }
  const burstSources = new Set(opts.burstSources ?? []);
  const recent = new Set(opts.recentTags ?? []);
  const out: Cluster[] = [];
  for (const members of groups.values()) out.push(buildCluster(members, items, vectors, dup, burstSources, recent, o));
  out.sort((a, b) => b.quality - a.quality || b.items.length - a.items.length || b.windowEnd - a.windowEnd || (a.id < b.id ? -1 : 1));
  return out;
}

type Resolved = Required<Omit<ClusterOptions, 'burstSources' | 'recentTags'>>;

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Union-find with path halving and union by size. */
class UnionFind {
  private readonly parent: Int32Array;
  private readonly size: Int32Array;
  constructor(n: number) {
    this.parent = new Int32Array(n);
    this.size = new Int32Array(n).fill(1);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }
  find(x: number): number {
    let v = x;
    while (this.parent[v] !== v) {
      const p = this.parent[v] as number;
      this.parent[v] = this.parent[p] as number;
      v = p;
    }
    return v;
  }
  union(a: number, b: number): void {
    let ra = this.find(a);
    let rb = this.find(b);
    if (ra === rb) return;
    if ((this.size[ra] as number) < (this.size[rb] as number)) [ra, rb] = [rb, ra];
    this.parent[rb] = ra;
    this.size[ra] = (this.size[ra] as number) + (this.size[rb] as number);
  }
}

function itemSimhash(it: SignalItem): string {
  return isSimhash(it.simhash) ? it.simhash.toLowerCase() : simhash64(`${it.title} ${it.summary}`);
}

function joinNearDuplicates(items: readonly SignalItem[], maxDist: number, uf: UnionFind, dup: UnionFind): void {
  // Equal hashes first: one pass, however many copies there are.
  const byHash = new Map<string, number>();
  const reps: number[] = [];
  const halves: Array<[number, number]> = [];
  for (let i = 0; i < items.length; i++) {
    const h = itemSimhash(items[i] as SignalItem);
    const first = byHash.get(h);
    if (first !== undefined) {
      uf.union(first, i);
      dup.union(first, i);
      continue;
    }
    byHash.set(h, i);
    reps.push(i);
    halves.push(simhashHalves(h));
  }
  if (maxDist <= 0) return;
  // The pigeonhole principle: with k bands, two hashes within k-1 bits agree on a whole band.
  const bands = Math.min(64, Math.max(4, maxDist + 1));
  const bandBits = Math.floor(64 / bands);
  const buckets = new Map<number, number[]>();
  for (let r = 0; r < reps.length; r++) {
    const [hi, lo] = halves[r] as [number, number];
    for (let b = 0; b < bands; b++) {
      const key = b * 2 ** 32 + bandValue(hi, lo, b * bandBits, b === bands - 1 ? 64 - b * bandBits : bandBits);
      const bucket = buckets.get(key);
      if (bucket) bucket.push(r);
      else buckets.set(key, [r]);
    }
  }
  for (const bucket of buckets.values()) {
    for (let x = 0; x < bucket.length; x++) {
      const rx = bucket[x] as number;
      const [xh, xl] = halves[rx] as [number, number];
      for (let y = x + 1; y < bucket.length; y++) {
        const ry = bucket[y] as number;
        const [yh, yl] = halves[ry] as [number, number];
        if (popcount32(xh ^ yh) + popcount32(xl ^ yl) <= maxDist) {
          uf.union(reps[rx] as number, reps[ry] as number);
          dup.union(reps[rx] as number, reps[ry] as number);
        }
      }
    }
  }
}

/** `len` (≤ 32) bits of a 64-bit value (given as two halves) starting at bit `from` (0 = most significant). */
function bandValue(hi: number, lo: number, from: number, len: number): number {
  let v = 0;
  for (let bit = from; bit < from + len; bit++) v = v * 2 + (bit < 32 ? (hi >>> (31 - bit)) & 1 : (lo >>> (63 - bit)) & 1);
  return v;
}

interface TermVectors {
  /** Per item: term ids, sorted ascending. */
  readonly terms: Int32Array[];
  /** Per item: the normalised weights, parallel to `terms`. */
  readonly weights: Float64Array[];
  /** A surface form of each term id. */
  readonly surface: string[];
}

function termVectors(items: readonly SignalItem[], o: Resolved): TermVectors {
  const vocab = new Map<string, number>();
  const termOf: string[] = [];
  const surface: string[] = [];
  const tfs: Array<Map<number, number>> = [];
  const df: number[] = [];
  for (const it of items) {
    const tf = new Map<number, number>();
    const add = (text: string, w: number) => {
      for (const { term, word } of contentTerms(text)) {
        let id = vocab.get(term);
        if (id === undefined) {
          id = surface.length;
          vocab.set(term, id);
          termOf.push(term);
          surface.push(word);
          df.push(0);
        }
        tf.set(id, (tf.get(id) ?? 0) + w);
      }
    };
    add(it.title, 2);
    add(it.summary, 1);
    if (it.text && it.text !== it.summary) add(it.text.length > o.maxTextChars ? it.text.slice(0, o.maxTextChars) : it.text, 1);
    for (const id of tf.keys()) df[id] = (df[id] as number) + 1;
    tfs.push(tf);
  }
  const n = items.length;
  const cap = Math.max(o.commonTermCap, Math.ceil(o.commonTermShare * n));
  const idf = df.map((d, id) => (Math.log((n + 1) / (d + 1)) + 1) * commonWordDamping(termOf[id] as string));
  const terms: Int32Array[] = [];
  const weights: Float64Array[] = [];
  for (const tf of tfs) {
    const scored: Array<[number, number]> = [];
    for (const [id, c] of tf) {
      if ((df[id] as number) > cap) continue;
      scored.push([id, (1 + Math.log(c)) * (idf[id] as number)]);
    }
    scored.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    const kept = scored.slice(0, o.maxTerms).sort((a, b) => a[0] - b[0]);
    let norm = 0;
    for (const [, w] of kept) norm += w * w;
    norm = Math.sqrt(norm) || 1;
    terms.push(Int32Array.from(kept, ([id]) => id));
    weights.push(Float64Array.from(kept, ([, w]) => w / norm));
  }
  return { terms, weights, surface };
}

function joinSimilar(items: readonly SignalItem[], v: TermVectors, o: Resolved, uf: UnionFind): void {
  const n = items.length;
  // Postings: for each term, the items holding it (ascending) and their weights.
  const postItems = new Map<number, number[]>();
  const postWeights = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const ts = v.terms[i] as Int32Array;
    const ws = v.weights[i] as Float64Array;
    for (let k = 0; k < ts.length; k++) {
      const t = ts[k] as number;
      let pi = postItems.get(t);
      if (!pi) {
        pi = [];
        postItems.set(t, pi);
        postWeights.set(t, []);
      }
      pi.push(i);
      postWeights.get(t)?.push(ws[k] as number);
    }
  }
  // Candidate pairs: each item meets the items after it in its terms' postings (a cursor per
  // term skips the ones before), and their cosine accumulates term by term.
  const cursor = new Map<number, number>();
  const acc = new Float64Array(n);
  const touched: number[] = [];
  const tagSets = items.map((it) => new Set(it.tags.map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0)));
  const edgeA: number[] = [];
  const edgeB: number[] = [];
  const edgeSim: number[] = [];
  const edgeBar: number[] = [];
  for (let i = 0; i < n; i++) {
    const ts = v.terms[i] as Int32Array;
    const ws = v.weights[i] as Float64Array;
    for (let k = 0; k < ts.length; k++) {
      const t = ts[k] as number;
      const pi = postItems.get(t) as number[];
      const pw = postWeights.get(t) as number[];
      const at = cursor.get(t) ?? 0;
      cursor.set(t, at + 1);
      const wi = ws[k] as number;
      for (let p = at + 1; p < pi.length; p++) {
        const j = pi[p] as number;
        if (acc[j] === 0) touched.push(j);
        acc[j] = (acc[j] as number) + wi * (pw[p] as number);
      }
    }
    const found: Array<[number, number, number]> = [];
    for (const j of touched) {
      const cos = acc[j] as number;
      acc[j] = 0;
      if (cos >= o.textThreshold) found.push([j, cos, o.textThreshold]);
      else if (cos >= o.tagTextThreshold && jaccard(tagSets[i] as Set<string>, tagSets[j] as Set<string>) >= o.tagThreshold) found.push([j, cos, o.tagTextThreshold]);
    }
    touched.length = 0;
    // The strongest links are enough to connect a story; a big one would otherwise bring
    // (its size)² pairs to sort.
    if (found.length > o.maxNeighbors) found.sort((x, y) => y[1] - x[1] || x[0] - y[0]).length = o.maxNeighbors;
    for (const [j, cos, bar] of found) {
      edgeA.push(i);
      edgeB.push(j);
      edgeSim.push(cos);
      edgeBar.push(bar);
    }
  }
  // Merge strongest pairs first, and two groups only when their centroids are as similar as the
  // pair had to be: one item that mentions two stories (a briefing, a roundup) then joins one
  // of them instead of chaining both into one cluster, as plain single linkage would.
  const order = Array.from(edgeSim.keys()).sort((x, y) => (edgeSim[y] as number) - (edgeSim[x] as number) || x - y);
  const groups = new Groups(n, v, uf);
  for (const e of order) groups.tryMerge(edgeA[e] as number, edgeB[e] as number, edgeBar[e] as number);
}

/** Groups under construction, each with the sum of its items' vectors (its centroid, unnormalised). */
class Groups {
  private readonly sum = new Map<number, Map<number, number>>();
  private readonly sqNorm = new Map<number, number>();
  private readonly count = new Map<number, number>();
  /** Pairs of groups refused at their current sizes (sizes change when either grows). */
  private readonly refused = new Set<string>();

  constructor(
    n: number,
    v: TermVectors,
    private readonly uf: UnionFind,
  ) {
    for (let i = 0; i < n; i++) {
      const r = uf.find(i);
      let m = this.sum.get(r);
      if (!m) {
        m = new Map();
        this.sum.set(r, m);
      }
      const ts = v.terms[i] as Int32Array;
      const ws = v.weights[i] as Float64Array;
      for (let k = 0; k < ts.length; k++) m.set(ts[k] as number, (m.get(ts[k] as number) ?? 0) + (ws[k] as number));
      this.count.set(r, (this.count.get(r) ?? 0) + 1);
    }
    for (const [r, m] of this.sum) {
      let q = 0;
      for (const w of m.values()) q += w * w;
      this.sqNorm.set(r, q);
    }
  }

  tryMerge(a: number, b: number, bar: number): void {
    const ra = this.uf.find(a);
    const rb = this.uf.find(b);
    if (ra === rb) return;
    const ca = this.count.get(ra) as number;
    const cb = this.count.get(rb) as number;
    const key = ra < rb ? `${ra}:${rb}:${ca}:${cb}` : `${rb}:${ra}:${cb}:${ca}`;
    if (this.refused.has(key)) return;
    const ma = this.sum.get(ra) as Map<number, number>;
    const mb = this.sum.get(rb) as Map<number, number>;
    const [small, big] = ma.size <= mb.size ? [ma, mb] : [mb, ma];
    let dot = 0;
    for (const [t, w] of small) {
      const x = big.get(t);
      if (x !== undefined) dot += w * x;
    }
    const qa = this.sqNorm.get(ra) as number;
    const qb = this.sqNorm.get(rb) as number;
    const cos = qa > 0 && qb > 0 ? dot / Math.sqrt(qa * qb) : 0;
    // A float's last bit must not refuse a pair of single items whose own cosine met the bar.
    if (cos < bar - 1e-9) {
      this.refused.add(key);
      return;
    }
    this.uf.union(ra, rb);
    const root = this.uf.find(ra);
    const other = root === ra ? rb : ra;
    for (const [t, w] of small) big.set(t, (big.get(t) ?? 0) + w);
    this.sum.set(root, big);
    this.sum.delete(other);
    this.sqNorm.set(root, qa + qb + 2 * dot);
    this.sqNorm.delete(other);
    this.count.set(root, ca + cb);
    this.count.delete(other);
  }
}

/** Jaccard similarity of two sets (0 when both are empty). */
export function jaccard<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): number {
  if (a.size === 0 && b.size === 0) return 0;
  let inter = 0;
  const [small, big] = a.size <= b.size ? [a, b] : [b, a];
  for (const x of small) if (big.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

function buildCluster(
  members: number[],
  items: readonly SignalItem[],
  v: TermVectors,
  dup: UnionFind,
  burstSources: ReadonlySet<string>,
  recent: ReadonlySet<string>,
  o: Resolved,
): Cluster {
  const its = members.map((i) => items[i] as SignalItem);
  // Central item: the one nearest the centroid of the normalised vectors.
  const centroid = new Map<number, number>();
  for (const i of members) {
    const ts = v.terms[i] as Int32Array;
    const ws = v.weights[i] as Float64Array;
    for (let k = 0; k < ts.length; k++) centroid.set(ts[k] as number, (centroid.get(ts[k] as number) ?? 0) + (ws[k] as number));
  }
  let central = members[0] as number;
  let best = -1;
  for (const i of members) {
    const ts = v.terms[i] as Int32Array;
    const ws = v.weights[i] as Float64Array;
    let s = 0;
    for (let k = 0; k < ts.length; k++) s += (ws[k] as number) * (centroid.get(ts[k] as number) ?? 0);
    const it = items[i] as SignalItem;
    if (s > best + 1e-12 || (Math.abs(s - best) <= 1e-12 && it.id < (items[central] as SignalItem).id)) {
      best = s;
      central = i;
    }
  }
  const keywords = [...centroid.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, 5)
    .map(([id]) => v.surface[id] as string);

  const tagCount = new Map<string, number>();
  for (const it of its) for (const t of new Set(it.tags.map((x) => x.trim().toLowerCase()))) if (t) tagCount.set(t, (tagCount.get(t) ?? 0) + 1);
  const needed = its.length === 1 ? 1 : Math.max(2, Math.ceil(its.length / 2));
  const tags = [...tagCount.entries()]
    .filter(([, c]) => c >= needed)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 6)
    .map(([t]) => t);
  for (const k of keywords) if (tags.length < 10 && !tags.includes(k)) tags.push(k);

  const sourceIds = [...new Set(its.map((it) => it.sourceId))].sort();
  const stories = new Set(members.map((i) => dup.find(i))).size;
  const perSource = new Map<string, number>();
  for (const it of its) if (burstSources.has(it.sourceId)) perSource.set(it.sourceId, (perSource.get(it.sourceId) ?? 0) + 1);
  const burst = [...perSource.values()].some((c) => c >= o.burstMinItems);
  const novelty = isNovel(tags, recent, { maxOverlap: o.noveltyMaxOverlap });
  const quality = clusterQuality({ sources: sourceIds.length, stories, burst, novelty });
  const at = (it: SignalItem) => it.publishedAt ?? it.fetchedAt;
  its.sort((a, b) => at(a) - at(b) || a.id - b.id);
  const centralItem = items[central] as SignalItem;
  return {
    id: clusterId(its.map((it) => it.id)),
    items: its,
    central: centralItem,
    title: centralItem.title,
    tags,
    keywords,
    sourceIds,
    stories,
    burst,
    novelty,
    quality,
    absorbed: quality < o.absorbBelow,
    windowStart: at(its[0] as SignalItem),
    windowEnd: its.reduce((m, it) => Math.max(m, at(it)), 0),
  };
}

/**
 * A cluster's id: SHA-256 of its item ids, sorted and joined with ':', first 16 hex digits (as
 * TeleClaude's `build_cluster_key`). Recording the same items twice writes one cluster.
 * @example
 * clusterId([3, 1, 2]) === clusterId([1, 2, 3]); // true
 */
export function clusterId(itemIds: readonly number[]): string {
  const sorted = [...itemIds].sort((a, b) => a - b);
  return createHash('sha256').update(sorted.join(':')).digest('hex').slice(0, 16);
}

/** What `clusterQuality` weighs. */
export interface QualityFactors {
  /** Distinct sources. */
  sources: number;
  /** Distinct tellings (near-duplicates counted once). */
  stories: number;
  burst: boolean;
  novelty: boolean;
}

/**
 * How much a cluster is worth surfacing, 0..1: 0.4 for corroboration (distinct sources, full
 * at 4), 0.25 for size (distinct tellings, log scale, full at 8), 0.2 for a burst, 0.15 for
 * novelty; halved when the cluster is one telling only (a singleton, or copies of one text:
 * syndication is not corroboration). Absorbed under 0.3 by default, so a lone item never
 * surfaces, two sources telling a story twice do when it is new, three sources always do.
 * @example
 * clusterQuality({ sources: 3, stories: 3, burst: false, novelty: false }); // 0.399
 */
export function clusterQuality(f: QualityFactors): number {
  const corroboration = Math.min(1, Math.max(0, f.sources - 1) / 3);
  const size = Math.min(1, Math.log2(Math.max(1, f.stories)) / 3);
  let q = 0.4 * corroboration + 0.25 * size + (f.burst ? 0.2 : 0) + (f.novelty ? 0.15 : 0);
  if (f.stories <= 1) q *= 0.5;
  return Math.round(Math.min(1, Math.max(0, q)) * 1000) / 1000;
}

/**
 * Whether a cluster's tags are new: the share of them seen on clusters formed recently is
 * under `maxOverlap` (default 0.5). A cluster without tags is never novel. TeleClaude calls a
 * cluster novel only when no tag at all was seen, which a source's own tags (on every item)
 * make never true.
 * @example
 * isNovel(['tech', 'kestrel', 'cve', 'patch'], new Set(['tech', 'kestrel'])); // false (2 of 4 seen)
 */
export function isNovel(clusterTags: readonly string[], recentTags: ReadonlySet<string> | readonly string[], opts: { maxOverlap?: number } = {}): boolean {
  const tags = [...new Set(clusterTags)];
  if (tags.length === 0) return false;
  const recent = recentTags instanceof Set ? (recentTags as ReadonlySet<string>) : new Set(recentTags as readonly string[]);
  const seen = tags.filter((t) => recent.has(t)).length;
  return seen / tags.length < (opts.maxOverlap ?? CLUSTER_DEFAULTS.noveltyMaxOverlap);
}

/**
 * The next EWMA baseline of a source's items per hour: `alpha` of the rate just observed, the
 * rest of the previous baseline; the first observation is the baseline.
 * @example
 * updateBaseline(null, 4); // 4
 * updateBaseline(4, 14, 0.2); // 6
 */
export function updateBaseline(prev: number | null | undefined, observed: number, alpha = 0.2): number {
  if (!Number.isFinite(observed) || observed < 0) return prev ?? 0;
  if (prev === null || prev === undefined || !Number.isFinite(prev)) return observed;
  const a = Math.min(1, Math.max(0, alpha));
  return a * observed + (1 - a) * prev;
}

/** Options of `isBurst` and `detectBurst`. */
export interface BurstOptions {
  /** The window the count covers, hours. Default 1. */
  windowHours?: number;
  /** Count must be at least this many times the expected one. Default 3. */
  factor?: number;
  /** And at least this many items. Default 5. */
  minCount?: number;
  /** And this many standard deviations over the expected count (Poisson: √expected, at least 1). Default 3. */
  z?: number;
}

/**
 * Whether `observed` items in a window are a burst for a source whose baseline is
 * `baselinePerHour`: at least `minCount`, at least `factor` times the expected count, and `z`
 * Poisson standard deviations over it. No baseline yet (a new source) is never a burst: its
 * first poll brings a backlog, which is not news.
 * @example
 * isBurst(12, 2); // true (expected 2)
 * isBurst(12, 10); // false
 */
export function isBurst(observed: number, baselinePerHour: number | null | undefined, opts: BurstOptions = {}): boolean {
  if (baselinePerHour === null || baselinePerHour === undefined || !Number.isFinite(baselinePerHour) || baselinePerHour < 0) return false;
  const expected = baselinePerHour * (opts.windowHours ?? 1);
  if (observed < (opts.minCount ?? 5)) return false;
  if (observed < (opts.factor ?? 3) * expected) return false;
  return (observed - expected) / Math.sqrt(Math.max(expected, 1)) >= (opts.z ?? 3);
}

/** One source's count in a window and its baseline (see `SignalClusterStore.sourceRates`). */
export interface SourceRate {
  sourceId: string;
  /** Items published (else fetched) in the window. */
  count: number;
  windowHours: number;
  /** EWMA of items per hour (signal_sources.baseline_per_hour); null until first measured. */
  baselinePerHour: number | null;
}

/**
 * The sources in a burst, each judged by `isBurst` against its own baseline.
 * @example
 * detectBurst([{ sourceId: 'wire', count: 30, windowHours: 1, baselinePerHour: 3 }]); // Set { 'wire' }
 */
export function detectBurst(rates: readonly SourceRate[], opts: Omit<BurstOptions, 'windowHours'> = {}): Set<string> {
  const out = new Set<string>();
  for (const r of rates) if (isBurst(r.count, r.baselinePerHour, { ...opts, windowHours: r.windowHours })) out.add(r.sourceId);
  return out;
}

/**
 * The `signal.cluster.formed` payload of a cluster.
 * @example
 * await emit({ event: 'signal.cluster.formed', description: c.title, payload: clusterPayload(c) });
 */
export function clusterPayload(c: Cluster): ClusterPayload {
  return {
    cluster_id: c.id,
    item_count: c.items.length,
    // The type's schema bounds these lists (1,000): a ticker's cluster of thousands names its first ones; item_count says how many.
    event_ids: c.items.slice(0, 1000).map((it) => it.eventId),
    item_urls: [...new Set(c.items.map((it) => it.url).filter((u) => u.length > 0 && u.length <= 2000))].slice(0, 1000),
    source_ids: [...c.sourceIds].slice(0, 1000),
    tags: [...c.tags],
    title: c.title,
    burst: c.burst,
    novelty: c.novelty,
    quality: c.quality,
    window_start: new Date(c.windowStart).toISOString(),
    window_end: new Date(c.windowEnd).toISOString(),
  };
}

interface ItemRow {
  id: number;
  source_id: string;
  event_id: string;
  url: string;
  title: string;
  summary: string;
  text: string;
  tags: string;
  simhash: string;
  published_at: number | null;
  fetched_at: number;
}

const ITEM_COLUMNS = 'id, source_id, event_id, url, title, summary, text, tags, simhash, published_at, fetched_at';

function toItem(r: ItemRow): SignalItem {
  let tags: string[] = [];
  try {
    const parsed = JSON.parse(r.tags) as unknown;
    if (Array.isArray(parsed)) tags = parsed.filter((t): t is string => typeof t === 'string');
  } catch {
    // A damaged tags column is no reason to lose the item.
  }
  return {
    id: r.id,
    sourceId: r.source_id,
    eventId: r.event_id,
    url: r.url,
    title: r.title,
    summary: r.summary,
    text: r.text,
    tags,
    simhash: r.simhash,
    publishedAt: r.published_at,
    fetchedAt: r.fetched_at,
  };
}

/** A recorded cluster, as `SignalClusterStore.cluster` and `pendingSynthesis` read it. */
export interface StoredCluster {
  id: string;
  formedAt: number;
  itemCount: number;
  title: string;
  tags: string[];
  burst: boolean;
  novelty: boolean;
  quality: number;
  eventId: string | null;
  synthesizedAt: number | null;
  synthesisEventId: string | null;
}

interface ClusterRow {
  id: string;
  formed_at: number;
  item_count: number;
  title: string;
  tags: string;
  burst: number;
  novelty: number;
  quality: number;
  event_id: string | null;
  synthesized_at: number | null;
  synthesis_event_id: string | null;
}

function toStoredCluster(r: ClusterRow): StoredCluster {
  return {
    id: r.id,
    formedAt: r.formed_at,
    itemCount: r.item_count,
    title: r.title,
    tags: parseTags(r.tags),
    burst: r.burst === 1,
    novelty: r.novelty === 1,
    quality: r.quality,
    eventId: r.event_id,
    synthesizedAt: r.synthesized_at,
    synthesisEventId: r.synthesis_event_id,
  };
}

function parseTags(s: string): string[] {
  try {
    const v = JSON.parse(s) as unknown;
    return Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

const HOUR_MS = 3_600_000;
/** How many retention periods an item's dedup keys outlive its text. */
const DEDUP_KEEP_FACTOR = 10;
const DAY_MS = 86_400_000;

/**
 * The clustering's tables (migration 10): unclustered items in, clusters out. Reads use the
 * store's reader (committed data); each write method runs its own transaction.
 * @example
 * const cs = new SignalClusterStore(node.ns.store);
 * for (const c of clusterItems(cs.unclustered(Date.now() - 3_600_000, 5000))) await cs.recordCluster(c);
 */
export class SignalClusterStore {
  private readonly insCluster: Statement;
  private readonly setItemCluster: Statement;
  private readonly setEvent: Statement;
  private readonly setSynthesized: Statement;
  private readonly setBaseline: Statement;

  constructor(readonly store: Store) {
    const db = store.db;
    this.insCluster = db.prepare(
      `INSERT INTO signal_clusters (id, formed_at, item_count, title, tags, burst, novelty, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO NOTHING`,
    );
    // An item another pass already placed keeps its cluster.
    this.setItemCluster = db.prepare('UPDATE signal_items SET cluster_id = ? WHERE id = ? AND cluster_id IS NULL');
    this.setEvent = db.prepare('UPDATE signal_clusters SET event_id = ? WHERE id = ?');
    this.setSynthesized = db.prepare('UPDATE signal_clusters SET synthesized_at = ?, synthesis_event_id = ? WHERE id = ?');
    this.setBaseline = db.prepare('UPDATE signal_sources SET baseline_per_hour = ? WHERE id = ?');
  }

  /** Items not in a cluster yet, fetched at or after `since` (epoch ms), oldest first, at most `limit`. */
  unclustered(since: number, limit: number): SignalItem[] {
    const rows = this.store.reader
      // The newest ones when there are more: a busy day must not keep new items waiting behind old singletons.
      .prepare(`SELECT ${ITEM_COLUMNS} FROM signal_items WHERE cluster_id IS NULL AND fetched_at >= ? ORDER BY fetched_at DESC, id DESC LIMIT ?`)
      .all(since, Math.max(0, Math.floor(limit))) as ItemRow[];
    return rows.reverse().map(toItem);
  }

  /** The items of a recorded cluster, oldest first. */
  members(clusterId: string, limit = 1000): SignalItem[] {
    const rows = this.store.reader
      .prepare(`SELECT ${ITEM_COLUMNS} FROM signal_items WHERE cluster_id = ? ORDER BY COALESCE(published_at, fetched_at), id LIMIT ?`)
      .all(clusterId, limit) as ItemRow[];
    return rows.map(toItem);
  }

  /**
   * Records a cluster and sets its items' cluster_id, in one transaction. Idempotent: the id
   * is a hash of the item ids, so recording the same cluster again changes nothing. Resolves
   * true when the cluster is new.
   */
  async recordCluster(c: Cluster, now: number = this.store.clock.now()): Promise<boolean> {
    return this.store.write(() => {
      const created = this.insCluster.run(c.id, now, c.items.length, c.title, JSON.stringify(c.tags), c.burst ? 1 : 0, c.novelty ? 1 : 0, c.quality).changes === 1;
      for (const it of c.items) this.setItemCluster.run(c.id, it.id);
      return created;
    });
  }

  /** Notes the id of the `signal.cluster.formed` event emitted for a cluster. */
  async markEmitted(clusterId: string, eventId: string): Promise<void> {
    await this.store.write(() => this.setEvent.run(eventId, clusterId));
  }

  /** Notes that a cluster's synthesis was emitted (`signal.synthesis.ready`). */
  async markSynthesized(clusterId: string, eventId: string | null, now: number = this.store.clock.now()): Promise<void> {
    await this.store.write(() => this.setSynthesized.run(now, eventId, clusterId));
  }

  cluster(id: string): StoredCluster | undefined {
    const r = this.store.reader.prepare('SELECT * FROM signal_clusters WHERE id = ?').get(id) as ClusterRow | undefined;
    return r ? toStoredCluster(r) : undefined;
  }

  /** Clusters emitted but not synthesized yet, quality at least `minQuality`, oldest first. */
  pendingSynthesis(limit: number, minQuality = 0): StoredCluster[] {
    const rows = this.store.reader
      .prepare('SELECT * FROM signal_clusters WHERE event_id IS NOT NULL AND synthesized_at IS NULL AND quality >= ? ORDER BY formed_at, id LIMIT ?')
      .all(minQuality, limit) as ClusterRow[];
    return rows.map(toStoredCluster);
  }

  /** Tags of the clusters formed in the last `hours` (what `isNovel` compares against). */
  recentTags(hours: number, now: number = this.store.clock.now()): Set<string> {
    const rows = this.store.reader.prepare('SELECT tags FROM signal_clusters WHERE formed_at >= ?').all(now - hours * HOUR_MS) as Array<{ tags: string }>;
    const out = new Set<string>();
    for (const r of rows) for (const t of parseTags(r.tags)) out.add(t);
    return out;
  }

  /**
   * Each configured source's item count over the last `windowMs` (by publication time, else
   * fetch time; an item published long ago and fetched now is backlog, not rate) with its
   * baseline: the input of `detectBurst`.
   */
  sourceRates(windowMs: number, now: number = this.store.clock.now()): SourceRate[] {
    const since = now - windowMs;
    const rows = this.store.reader
      .prepare(
        `SELECT s.id AS id, s.baseline_per_hour AS baseline,
                (SELECT COUNT(*) FROM signal_items i WHERE i.source_id = s.id AND i.fetched_at >= @since AND COALESCE(i.published_at, i.fetched_at) >= @since AND COALESCE(i.published_at, i.fetched_at) <= @now) AS n
         FROM signal_sources s ORDER BY s.id`,
      )
      .all({ since, now }) as Array<{ id: string; baseline: number | null; n: number }>;
    return rows.map((r) => ({ sourceId: r.id, count: r.n, windowHours: windowMs / HOUR_MS, baselinePerHour: r.baseline }));
  }

  /**
   * Folds each source's observed rate into its baseline (`updateBaseline`) in one transaction,
   * after the window was judged: a burst is measured against the baseline from before it.
   */
  async updateBaselines(rates: readonly SourceRate[], alpha = 0.2): Promise<void> {
    await this.store.write(() => {
      for (const r of rates) {
        if (r.windowHours <= 0) continue;
        this.setBaseline.run(updateBaseline(r.baselinePerHour, r.count / r.windowHours, alpha), r.sourceId);
      }
    });
  }

  /**
   * Deletes items fetched and clusters formed more than `days` ago, `batch` rows per
   * transaction (so the write lock is never held long), at most `maxBatches` transactions per
   * call (an abort stops between batches); `more` says whether rows may be left for the next
   * call. Deleting an item forgets its dedup keys too: keep `days` longer than any feed keeps
   * an item listed.
   */
  async prune(days: number, opts: { batch?: number; maxBatches?: number; now?: number; signal?: AbortSignal } = {}): Promise<{ items: number; clusters: number; more: boolean }> {
    opts.signal?.throwIfAborted();
    const now = opts.now ?? this.store.clock.now();
    const cutoff = now - days * DAY_MS;
    // Past the retention an item keeps only what dedup needs (its keys, not its text), ten
    // times as long: a feed that still lists an old post does not bring it back as new.
    const keysCutoff = now - days * DEDUP_KEEP_FACTOR * DAY_MS;
    const batch = Math.max(1, opts.batch ?? 2000);
    const maxBatches = Math.max(1, opts.maxBatches ?? 50);
    const strip = this.store.db.prepare(
      "UPDATE signal_items SET text = '', summary = '' WHERE id IN (SELECT id FROM signal_items WHERE fetched_at < ? AND (text != '' OR summary != '') LIMIT ?)",
    );
    const delItems = this.store.db.prepare('DELETE FROM signal_items WHERE id IN (SELECT id FROM signal_items WHERE fetched_at < ? LIMIT ?)');
    const delClusters = this.store.db.prepare('DELETE FROM signal_clusters WHERE id IN (SELECT id FROM signal_clusters WHERE formed_at < ? LIMIT ?)');
    let items = 0;
    let clusters = 0;
    for (let b = 0; b < maxBatches; b++) {
      if (opts.signal?.aborted) return { items, clusters, more: true };
      const [di, dc] = await this.store.write(() => {
        strip.run(cutoff, batch);
        return [delItems.run(keysCutoff, batch).changes, delClusters.run(cutoff, batch).changes] as const;
      });
      items += di;
      clusters += dc;
      if (di < batch && dc < batch) return { items, clusters, more: false };
    }
    return { items, clusters, more: true };
  }
}
