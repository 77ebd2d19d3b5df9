/**
 * `npm run bench -- recovery` (issue 18): the Phoenix restore of a node from its peers on
 * loopback. Node A logs WEFT_BENCH_RECOVERY_EVENTS events (default 100,000, half of them
 * cluster-visible: those reach its three peers B, C, D by visibility push), its notifications'
 * states are journaled, a beacon goes out and the peers report their copies. Then A is stopped,
 * its data dir is deleted but for its key, and a fresh A restores: timed from the restore's
 * start to its end (query, pull, verify, write, notifications, sequence).
 *
 * Whole nodes in this process (the daemon's assembly over TLS: six-stage pipeline, SQLite with
 * synchronous=FULL, signed frames), so the four share one thread. Goal: < 60 s for 100k events.
 * Run alone: `npm run build && node dist/bench/recovery.js`.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AssembledNode, assembleNode } from '../src/daemon/assemble.js';
import { loadOrCreateIdentity } from '../src/identity/index.js';
import type { KnownPeer } from '../src/mesh/index.js';
import type { RestoreProgress } from '../src/recovery/index.js';
import { tlsProvider } from '../src/transport/index.js';
import { freePort } from '../test/helpers/redis.js';
import { type BenchSection, fmt } from './harness.js';

const N = Number(process.env.WEFT_BENCH_RECOVERY_EVENTS ?? 100_000);
const GOAL_MS = 60_000;

type Name = 'a' | 'b' | 'c' | 'd';

export interface RecoveryFigures {
  events: number;
  clusterEvents: number;
  /** Events restored (A's cluster events, journal and beacons included). */
  restored: number;
  notifications: number;
  restoreMs: number;
  perSec: number;
  verifiedRanges: number;
  ranges: number;
  /** A's emit of the log (committed by its pipeline and pushed to the three peers), ms. */
  prepareMs: number;
  /** ms per restore phase. */
  phasesMs: Record<string, number>;
}

async function until(fn: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`bench recovery: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function phoenixRestore(n = N): Promise<RecoveryFigures> {
  const root = mkdtempSync(join(tmpdir(), 'weft-bench-recovery-'));
  const names: Name[] = ['a', 'b', 'c', 'd'];
  const info = {} as Record<Name, { nodeId: string; port: number }>;
  for (const c of names) {
    mkdirSync(join(root, c), { recursive: true });
    info[c] = { nodeId: loadOrCreateIdentity(join(root, c, 'identity.key')).identity.nodeId, port: await freePort() };
  }
  const running = new Set<AssembledNode>();
  const build = async (me: Name): Promise<AssembledNode> => {
    const others = names.filter((o) => o !== me);
    const peers: KnownPeer[] = others.map((o) => ({ computer: o, cluster: 'bench', nodeId: info[o].nodeId, trustLevel: 'peer', origin: 'static' }));
    const node = await assembleNode({
      dataDir: join(root, me),
      computer: me,
      cluster: 'bench',
      ...(me === 'a' ? { system: { trust: { rate: false as const } } } : {}),
      mesh: {
        provider: tlsProvider({ computer: me, port: info[me].port, peers: others.map((o) => ({ computer: o, nodeId: info[o].nodeId, host: '127.0.0.1', port: info[o].port })), credits: 512 }),
        peers,
      },
      recovery: { beaconIntervalMs: 3_600_000 },
    });
    await node.start();
    running.add(node);
    return node;
  };
  const recovery = (x: AssembledNode) => {
    if (!x.recovery) throw new Error('no recovery organ');
    return x.recovery;
  };
  try {
    const [b, c, d] = await Promise.all([build('b'), build('c'), build('d')]);
    let a = await build('a');
    await until(async () => recovery(a).mode() === 'normal', 60_000, "A's first check of its peers");
    const t0 = performance.now();
    for (let i = 0; i < n; i += 5000) {
      await a.node.emitMany(Array.from({ length: Math.min(5000, n - i) }, (_, k) => ({ event: 'mesh.test.ping', visibility: (i + k) % 2 === 0 ? 'cluster' : 'local', payload: { n: i + k } })));
    }
    if (!(await a.node.idle(600_000))) throw new Error("A's pipeline did not catch up");
    const clusterEvents = Math.ceil(n / 2);
    for (const p of [b, c, d]) await until(async () => (await recovery(p).digest(info.a.nodeId)).count >= clusterEvents, 600_000, 'the pushes to the peers');
    await until(() => recovery(a).notes.pending() === 0 && recovery(a).notes.journaled() >= clusterEvents, 600_000, "A's notification journal");
    await recovery(a).beaconNow();
    const own = await recovery(a).digest();
    for (const p of [b, c, d]) await until(async () => (await recovery(p).digest(info.a.nodeId)).count >= own.count, 600_000, 'the journal and the beacon at the peers');
    await until(async () => recovery(a).holdings.all().length >= 3, 60_000, 'the peers to report their copies');
    const prepareMs = performance.now() - t0;

    // The laptop dies: its data dir goes, its key stays.
    await a.stop();
    running.delete(a);
    for (const f of readdirSync(join(root, 'a'))) if (f !== 'identity.key') rmSync(join(root, 'a', f), { recursive: true, force: true });
    a = await build('a');
    await until(async () => recovery(a).mode() === 'needs-restore', 60_000, 'the fresh A to find its peers hold its history');
    const tr = performance.now();
    recovery(a).restore();
    let p: RestoreProgress | null = null;
    await until(
      () => {
        p = recovery(a).restoreProgress();
        return p !== null && p.state !== 'running';
      },
      1_800_000,
      'the restore',
    );
    const restoreMs = performance.now() - tr;
    const done = p as unknown as RestoreProgress;
    if (done.state !== 'done') throw new Error(`restore failed: ${done.error}`);
    return {
      events: n,
      clusterEvents,
      restored: done.written,
      notifications: done.notifications,
      restoreMs,
      perSec: done.written / (restoreMs / 1000),
      verifiedRanges: done.ranges.verified,
      ranges: done.ranges.total,
      prepareMs,
      phasesMs: done.timings as Record<string, number>,
    };
  } finally {
    for (const x of [...running].reverse()) await x.stop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}

export default async function recoveryBench(): Promise<BenchSection> {
  const f = await phoenixRestore();
  return {
    title: 'Recovery: Phoenix restore of a wiped node from 3 peers over TLS (loopback, one process)',
    rows: [
      {
        measure: `restore of ${fmt(f.events)} events' node (${fmt(f.restored)} cluster events back, ${fmt(f.notifications)} notification states)`,
        figure: `${fmt(f.restoreMs / 1000, 1)} s (${fmt(f.perSec)} events/s); ${f.verifiedRanges} of ${f.ranges} ranges verified`,
        goal: '< 60 s',
        met: f.restoreMs < GOAL_MS ? 'yes' : 'no',
      },
    ],
    results: { phoenix: f, goalMs: GOAL_MS },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = await recoveryBench();
  console.table(s.rows);
  console.log(JSON.stringify(s.results, null, 2));
}
