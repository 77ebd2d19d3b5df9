/**
 * Clustering time for 10,000 items, for `npm run bench -- signals` (bench/run.ts folds it in):
 * - stories of ~10 items with generated names, 10% near-duplicate copies, 10% singletons
 *   (test/signals/corpus.ts `syntheticCorpus`): the usual shape of a day of feeds;
 * - the 25 stories of the test corpus at ~400 items each (`bigStories`): the expensive shape,
 *   where a few terms have long postings.
 * Each is the median of 3 runs after a warm-up, items generated beforehand (SimHash included,
 * as ingest computes it). Pairwise precision and recall against the generated groups are
 * reported alongside, so a faster clustering that got worse shows.
 */
import { type Cluster, clusterItems } from '../src/signals/index.js';
import { bigStories, type Corpus, pairwise, syntheticCorpus } from '../test/signals/corpus.js';
import { fmt } from './harness.js';

const N = Number(process.env.WEFT_SIGNALS_CLUSTER_ITEMS ?? 10_000);
const RUNS = 3;

export interface ClusterBenchRow {
  measure: string;
  value: string;
  goal: string;
  verdict: string;
}

function timeIt(c: Corpus): { medianMs: number; clusters: Cluster[] } {
  let clusters = clusterItems(c.items);
  const times: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    clusters = clusterItems(c.items);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)] as number, clusters };
}

/**
 * Rows of the clustering benchmark.
 * @example
 * for (const row of await clusterBench()) console.log(row.measure, row.value);
 */
export async function clusterBench(): Promise<ClusterBenchRow[]> {
  const rows: ClusterBenchRow[] = [];
  const big = bigStories(N, 1);
  const inStories = big.items.filter((it) => !it.group.startsWith('single-')).length;
  const shapes: Array<{ name: string; corpus: Corpus; goalMs: number }> = [
    { name: `${fmt(N)} items, stories of ~10, 10% copies, 10% singletons`, corpus: syntheticCorpus(N, 1), goalMs: 2000 },
    { name: `${fmt(N)} items, 25 stories of ~${fmt(inStories / 25)}, the rest singletons`, corpus: big, goalMs: 5000 },
  ];
  for (const s of shapes) {
    const { medianMs, clusters } = timeIt(s.corpus);
    const where = new Map<number, string>();
    for (const c of clusters) for (const it of c.items) where.set(it.id, c.id);
    const q = pairwise(s.corpus.items, (id) => where.get(id) ?? '');
    rows.push({ measure: `cluster ${s.name} (median of ${RUNS})`, value: `${fmt(medianMs)} ms`, goal: `< ${fmt(s.goalMs)} ms`, verdict: medianMs < s.goalMs ? 'met' : 'not met' });
    rows.push({ measure: `  ${fmt(clusters.length)} clusters, pairwise precision / recall`, value: `${q.precision.toFixed(3)} / ${q.recall.toFixed(3)}`, goal: '', verdict: '' });
  }
  return rows;
}
