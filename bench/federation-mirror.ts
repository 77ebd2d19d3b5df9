/**
 * The mirror part of `npm run bench -- federation`: how fast a backlog of 100,000
 * cluster-visible events on node A reaches a fresh node, by a mirror mount (C pulls A's log)
 * against the same events sent by visibility push (A's outbox drains to B), in the same run,
 * over TLS and over Redis. Whole nodes in this process (the daemon's assembly: six-stage
 * pipeline, SQLite commits with synchronous=FULL, signed frames, verified ingress).
 *
 *   1. A logs the events while B is down and C unknown (its outbox holds them for B).
 *   2. Push: B starts; timed until B's pipeline committed all of them.
 *   3. Mirror: C starts and opens a mirror mount of A; timed until C's pipeline committed all.
 *
 * Goal: the mirror is no slower than push for the same backlog (≥ 1.0× its events/s): a node
 * catching up on history should not be better off waiting for an outbox.
 * Both ends share this process's one thread (as in the mesh bench), so neither gets a core
 * of its own. WEFT_BENCH_MIRROR_EVENTS sets the count; WEFT_BENCH_MIRROR_WINDOW and
 * WEFT_BENCH_MIRROR_IN_FLIGHT try other mount settings than the node's defaults.
 * Run alone: `npm run build && node dist/bench/federation-mirror.js`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AssembledNode, assembleNode } from '../src/daemon/assemble.js';
import { loadOrCreateIdentity } from '../src/identity/index.js';
import type { KnownPeer } from '../src/mesh/index.js';
import { type ProviderFactory, redisProvider, tlsProvider } from '../src/transport/index.js';
import { freePort, TestRedis } from '../test/helpers/redis.js';
import { type BenchSection, fmt } from './harness.js';

const N = Number(process.env.WEFT_BENCH_MIRROR_EVENTS ?? 100_000);
const GOAL_RATIO = 1.0;

type Kind = 'tls' | 'redis';
type Name = 'a' | 'b' | 'c';

export interface MirrorFigures {
  provider: Kind;
  events: number;
  /** A's emit of the backlog (all committed by its pipeline), events/s. */
  emitPerSec: number;
  pushPerSec: number;
  pushMs: number;
  mirrorPerSec: number;
  mirrorMs: number;
  ratio: number;
  /** The mirror mount's figures at the end (batches, duplicates, timeouts). */
  mount: Record<string, unknown>;
}

/** Waits until `fn` or `ms`; throws naming `what`. */
async function until(fn: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`bench federation-mirror: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Counts the committed pings of a node. */
function pings(n: AssembledNode): () => number {
  let count = 0;
  n.node.onCommitted((b) => {
    for (const e of b.passed) if (e.event === 'mesh.test.ping') count++;
  });
  return () => count;
}

export async function mirrorVsPush(kind: Kind, n = N, redisUrl?: string): Promise<MirrorFigures> {
  const root = mkdtempSync(join(tmpdir(), `weft-bench-mirror-${kind}-`));
  const names: Name[] = ['a', 'b', 'c'];
  const info = {} as Record<Name, { nodeId: string; port: number }>;
  for (const c of names) {
    mkdirSync(join(root, c), { recursive: true });
    info[c] = { nodeId: loadOrCreateIdentity(join(root, c, 'identity.key')).identity.nodeId, port: await freePort() };
  }
  const running: AssembledNode[] = [];
  const build = async (me: Name, others: Name[]): Promise<AssembledNode> => {
    const peers: KnownPeer[] = others.map((o) => ({ computer: o, cluster: 'bench', nodeId: info[o].nodeId, trustLevel: 'peer', origin: 'static' }));
    const provider: ProviderFactory =
      kind === 'redis'
        ? redisProvider({ url: redisUrl as string, computer: me })
        : tlsProvider({ computer: me, port: info[me].port, peers: others.map((o) => ({ computer: o, nodeId: info[o].nodeId, host: '127.0.0.1', port: info[o].port })), credits: 512 });
    const node = await assembleNode({
      dataDir: join(root, me),
      computer: me,
      cluster: 'bench',
      // A's producer emits as fast as it can: not a flood. Receivers keep the shipped trust defaults.
      ...(me === 'a' ? { system: { trust: { rate: false as const } } } : {}),
      mesh: { provider, peers },
    });
    await node.start();
    running.push(node);
    return node;
  };
  const stop = async (node: AssembledNode) => {
    await node.stop();
    running.splice(running.indexOf(node), 1);
  };
  try {
    // 1. The backlog: B is down (A's outbox keeps the events for it), C is not A's peer yet.
    let a = await build('a', ['b']);
    const t0 = performance.now();
    for (let i = 0; i < n; i += 5000) {
      await a.node.emitMany(Array.from({ length: Math.min(5000, n - i) }, (_, k) => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: i + k } })));
    }
    if (!(await a.node.idle(600_000))) throw new Error("A's pipeline did not catch up");
    const emitPerSec = n / ((performance.now() - t0) / 1000);
    await stop(a);
    a = await build('a', ['b', 'c']);

    // 2. Push: B drains A's outbox.
    const tp = performance.now();
    const b = await build('b', ['a']);
    const atB = pings(b);
    await until(() => atB() >= n, 1_800_000, `push: ${n} events at B`);
    const pushMs = performance.now() - tp;
    await stop(b);

    // 3. Mirror: C pulls A's log.
    const c = await build('c', ['a']);
    const atC = pings(c);
    const fed = c.federation;
    if (!fed) throw new Error('the assembled node has no federation');
    const tm = performance.now();
    const mount = await fed.openMount({ peer: 'a', mode: 'mirror', ...(process.env.WEFT_BENCH_MIRROR_WINDOW ? { options: { beat_window: Number(process.env.WEFT_BENCH_MIRROR_WINDOW), max_in_flight: Number(process.env.WEFT_BENCH_MIRROR_IN_FLIGHT ?? 4) } } : {}) });
    await until(() => atC() >= n, 1_800_000, `mirror: ${n} events at C`);
    const mirrorMs = performance.now() - tm;
    const status = (fed.mirror.status(mount.id) ?? {}) as unknown as Record<string, unknown>;
    const pushPerSec = n / (pushMs / 1000);
    const mirrorPerSec = n / (mirrorMs / 1000);
    return {
      provider: kind,
      events: n,
      emitPerSec,
      pushPerSec,
      pushMs,
      mirrorPerSec,
      mirrorMs,
      ratio: mirrorPerSec / pushPerSec,
      mount: { bundle_seq: status.bundle_seq, applied_count: status.applied_count, duplicates: status.duplicates, timeouts: status.timeouts, requests: status.requests, window: status.window, max_in_flight: status.max_in_flight },
    };
  } finally {
    for (const node of [...running].reverse()) await node.stop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * The mirror section's rows: events/s mirrored vs pushed, per provider, and the goal.
 * @example
 * const s = await federationMirrorBench(); console.table(s.rows);
 */
export async function federationMirrorBench(): Promise<BenchSection> {
  const figures: MirrorFigures[] = [];
  figures.push(await mirrorVsPush('tls'));
  let redis: TestRedis | undefined;
  let redisSkipped: string | undefined;
  try {
    redis = await TestRedis.start();
  } catch (err) {
    redisSkipped = (err as Error).message;
  }
  if (redis) {
    try {
      figures.push(await mirrorVsPush('redis', N, redis.url));
    } finally {
      await redis.stop();
    }
  }
  const rows = figures.flatMap((f) => [
    {
      measure: `mirror: ${fmt(f.events)} cluster events of A's log to a fresh node, ${f.provider} (mount defaults: window ${String(f.mount.window)}, ${String(f.mount.max_in_flight)} in flight)`,
      goal: `≥ ${fmt(GOAL_RATIO, 1)}× push`,
      figure: `${fmt(f.mirrorPerSec)} events/s (${fmt(f.mirrorMs / 1000, 1)} s)`,
      peer: `push (A's outbox to a fresh node) ${fmt(f.pushPerSec)} events/s (${fmt(f.pushMs / 1000, 1)} s)`,
      met: f.ratio >= GOAL_RATIO ? 'yes' : 'no',
    },
    {
      measure: `mirror / push, ${f.provider}`,
      goal: `≥ ${fmt(GOAL_RATIO, 1)}`,
      figure: fmt(f.ratio, 2),
      peer: `A emitted the backlog at ${fmt(f.emitPerSec)} events/s`,
      met: f.ratio >= GOAL_RATIO ? 'yes' : 'no',
    },
  ]);
  if (redisSkipped) rows.push({ measure: 'mirror vs push over Redis', goal: '-', figure: 'skipped', peer: redisSkipped, met: '-' });
  return {
    title: `Federation: mirror throughput vs visibility push (${fmt(N)} events, whole nodes in one process)`,
    rows,
    results: { mirror: figures, goalRatio: GOAL_RATIO, ...(redisSkipped ? { redisSkipped } : {}) },
  };
}

// `node dist/bench/federation-mirror.js` runs it alone.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const s = await federationMirrorBench();
  console.log(`\n## ${s.title}`);
  console.table(s.rows);
  console.log(JSON.stringify(s.results, null, 2));
}
