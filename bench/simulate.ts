/**
 * `npm run simulate -- [--nodes 100] [--seconds 60] [--rate 2] [--max-deliveries 100] [--seed K]
 *   [--churn 0.05] [--garbage 0.01] [--sizes 25,50,100] [--data-root auto|DIR] [--preseed K] [--out DIR] [--profile]`
 *
 * A fleet of whole nodes in this one process (the daemon's own `assembleNode`: SQLite store,
 * system pipeline, outbox, mesh, federation, recovery, privacy), linked over the in-memory
 * transport. Every node pins every other statically: `peer` inside its cluster, `share_to`
 * outside, so public events reach everyone and cluster events stay in the cluster. Clusters have
 * random sizes of 5–20 and cover every node. Each node emits `mesh.test.load` events at `--rate`
 * per second (exponential gaps), 1 % public, 70 % cluster, the rest local, each carrying its emit
 * time; a receiver's `onCommitted` gives the delivery time (after its commit and fsync).
 *
 * Churn: `--churn` of the nodes stop during the steady phase and start again later on the same
 * data dir (their peers' outboxes hold what they miss). Garbage: `--garbage` of the frames put on
 * the network are hostile (random bytes, truncated or bit-flipped real frames), written with the
 * memory network's raw append into the receiver's inbox, so receivers must reject and record
 * them; every one must show up as a refusal in that receiver's mesh counters.
 *
 * The steady phase runs at several fleet sizes (default N, N/2, N/4, each at least 5 nodes), one
 * after the other, to show how cost grows with peers: CPU-µs per delivery at each size (linear in
 * fan-out means it stays about constant). Flat in the number of stored events: CPU-µs per
 * delivery in the first and the last tenth of the largest run, and (`--preseed K`, default 10,000
 * from the command line) in one more run of the largest fleet whose nodes each get K local events
 * through their pipelines first. Per-node cost is the process's CPU and RSS divided by
 * the number of nodes. Writes report.json and report.html (charts like the load report's).
 *
 * The nodes use the shipped defaults (trust, recovery, mesh limits). Two things the machine can
 * force, both reported: where the SQLite files live (every node's `synchronous=FULL` commit
 * fsyncs on this one event loop, so on a disk the disk would be what is measured; by default,
 * `--data-root auto`, the run probes os.tmpdir() and moves to /dev/shm when an fsync there costs
 * more than 0.1 ms), and the rate (every node shares this one event loop: when `--rate` would ask
 * the largest fleet for more than `--max-deliveries` deliveries a second, every run's rate is
 * lowered to fit, so that the figures measure the nodes and not the queue of a saturated loop).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { CONFIG_KEYS } from '../src/config/index.js';
import { type AssembledNode, type AssembleInit, assembleNode } from '../src/daemon/assemble.js';
import type { Envelope } from '../src/envelope/index.js';
import type { KnownPeer } from '../src/mesh/index.js';
import type { CommittedBatch } from '../src/pipeline/index.js';
import { MemoryNetwork, memoryProvider, type ProviderFactory } from '../src/transport/index.js';
import { Prng, randomSeed } from '../test/chaos/prng.js';
import { fmt, percentile } from './harness.js';
import { htmlPage, lineChart, type Series } from './load-report.js';

export interface SimulateOptions {
  /** Nodes of the largest run (default 100). */
  nodes: number;
  /** Seconds of steady load per fleet size, after start-up and warm-up (default 60). */
  seconds: number;
  /** Events per second each node emits (default 2), unless `maxDeliveries` lowers it. */
  rate: number;
  /**
   * Deliveries per second a fleet may be asked for, at most (default 100; 0: no cap). Every
   * node runs on this one event loop: when `rate` would ask more of a fleet, that run's rate is
   * lowered to fit (so every run is asked for about the same deliveries per second and the runs
   * differ in their number of peers), and the report says so.
   */
  maxDeliveries?: number;
  /** Seed of every random choice: clusters, schedule, mix, churn, garbage (default random, printed). */
  seed: number;
  /** Share of the nodes that stop during the steady phase and start again (default 0.05). */
  churn: number;
  /** Share of the frames on the network that are garbage (default 0.01). */
  garbage: number;
  /** Fleet sizes, ascending; the last is the main run (default N/4, N/2, N, each ≥ 5). */
  sizes?: number[];
  /** Where the nodes' data dirs go: a directory, or 'auto' (default; see the module comment). */
  dataRoot?: string;
  /** Directory for report.json and report.html. */
  out: string;
  /**
   * Local events written into each node's log before the load of one more run of the largest
   * fleet (default 0: none), whose CPU-µs per delivery is then compared with the fresh run's:
   * cost flat in the number of stored events.
   */
  preseed?: number;
  /** Write a CPU profile of the largest run's steady phase to `<out>/steady.cpuprofile` (default false). */
  profile?: boolean;
  log?: (s: string) => void;
}

export interface Goal {
  name: string;
  target: string;
  value: string;
  met: boolean;
}

const LOAD_EVENT = 'mesh.test.load';
const MIX = { public: 0.01, cluster: 0.7 };
type Vis = 'local' | 'cluster' | 'public';
type Section = 'startup' | 'settle' | 'idle' | 'warmup' | 'steady' | 'drain';

/** Epoch milliseconds with sub-millisecond resolution (emit time → commit time). */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
const MiB = 1048576;

interface SimNode {
  idx: number;
  computer: string;
  cluster: string;
  clusterIdx: number;
  dir: string;
  nodeId: string;
  peers: KnownPeer[];
  a: AssembledNode | undefined;
  state: 'down' | 'starting' | 'up' | 'stopping';
  rng: Prng;
  nextAt: number;
  n: number;
  /** Mesh refusals of earlier incarnations, by code. */
  rejectedBase: Record<string, number>;
  garbageIn: number;
  restarts: number;
  /** [stop began, start finished], epoch ms. */
  down: Array<[number, number]>;
  churn: { stopAt: number; upAt: number } | undefined;
  received: Map<string, number>;
}

interface Delivery {
  r: number;
  from: number;
  id: string;
  vis: Vis;
  sent: number;
  recv: number;
}

interface Snap {
  t: number;
  cpu: number;
  deliveries: number;
  elu: ReturnType<typeof performance.eventLoopUtilization>;
  storedPerNode?: number;
}

interface Sample {
  t: number;
  section: Section;
  cpuPct: number;
  elu: number;
  /** How late the once-a-second sampler ran: the event loop's backlog. */
  lateMs: number;
  rssMiB: number;
  heapMiB: number;
  deliveriesPerSec: number;
  up: number;
  inboxBacklog: number;
  outboxDepth?: number;
  garbageInjected: number;
  rejected: number;
}

/** Cluster sizes of 5–20 covering `n` nodes (one cluster of n below 5). */
export function clusterSizes(n: number, rng: Prng): number[] {
  const out: number[] = [];
  let left = n;
  while (left > 0) {
    let k = rng.int(5, 21);
    if (left - k < 5) k = left <= 20 ? left : left - 5;
    out.push(k);
    left -= k;
  }
  return out;
}

function defaultSizes(n: number): number[] {
  const xs = [Math.round(n / 4), Math.round(n / 2), n].filter((s) => s >= 5);
  return [...new Set(xs.length > 0 ? xs : [n])];
}

/** Median cost of a 4 KiB write + fsync in `dir`, ms. */
function fsyncMs(dir: string): number {
  const p = join(dir, `.weft-fsync-probe-${process.pid}`);
  const fd = openSync(p, 'w');
  const buf = Buffer.alloc(4096, 7);
  const xs: number[] = [];
  try {
    for (let i = 0; i < 40; i++) {
      const t = performance.now();
      writeSync(fd, buf);
      fsyncSync(fd);
      xs.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    unlinkSync(p);
  }
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)] as number;
}

function chooseDataRoot(want: string | undefined): { root: string; reason: string; probes: Record<string, number> } {
  if (want && want !== 'auto') return { root: want, reason: 'given with --data-root', probes: { [want]: fsyncMs(want) } };
  const tmp = tmpdir();
  const probes: Record<string, number> = { [tmp]: fsyncMs(tmp) };
  const tmpfs = '/dev/shm';
  if ((probes[tmp] as number) > 0.1 && existsSync(tmpfs)) {
    try {
      probes[tmpfs] = fsyncMs(tmpfs);
      return {
        root: tmpfs,
        reason: `an fsync in ${tmp} costs ${fmt(probes[tmp] as number, 2)} ms; every node's synchronous=FULL commits fsync on this one event loop (hundreds a second), so the nodes' files are on tmpfs (${tmpfs}) and the disk's fsync is left out of the figures`,
        probes,
      };
    } catch {
      // Not writable: stay on tmpdir.
    }
  }
  return { root: tmp, reason: `os.tmpdir() (an fsync there costs ${fmt(probes[tmp] as number, 2)} ms)`, probes };
}

function quantiles(xs: number[]): { n: number; p50: number; p90: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s.length > 0 ? (s[s.length - 1] as number) : Number.NaN };
}

/** Expected arrivals, arrivals and their faults, per event id and receiver. */
function account(nodes: SimNode[], emitted: Map<string, { from: number; vis: Vis; sent: number }>) {
  let expected = 0;
  let delivered = 0;
  let lost = 0;
  let duplicated = 0;
  let unexpected = 0;
  const lostExamples: string[] = [];
  const eligible = (from: number, vis: Vis, r: number) =>
    r !== from && (vis === 'public' || (vis === 'cluster' && (nodes[r] as SimNode).clusterIdx === (nodes[from] as SimNode).clusterIdx));
  for (const [id, e] of emitted) {
    if (e.vis === 'local') continue;
    for (const r of nodes) {
      if (!eligible(e.from, e.vis, r.idx)) continue;
      expected++;
      const c = r.received.get(id) ?? 0;
      if (c === 0) {
        lost++;
        if (lostExamples.length < 10) lostExamples.push(`${id} (${e.vis}) ${(nodes[e.from] as SimNode).computer} → ${r.computer}`);
      } else {
        delivered++;
        duplicated += c - 1;
      }
    }
  }
  for (const r of nodes) {
    for (const id of r.received.keys()) {
      const e = emitted.get(id);
      if (!e || !eligible(e.from, e.vis, r.idx)) unexpected++;
    }
  }
  return { expected, delivered, lost, duplicated, unexpected, lostExamples };
}

interface PhaseResult {
  nodes: number;
  /** Events per second each node emitted. */
  rate: number;
  /** Local events written into each node's log before the load (the pre-seeded run). */
  preseeded: number;
  preseed?: { seconds: number; eventsPerSec: number; storedPerNode: number };
  clusters: number[];
  wallS: number;
  startup: { totalMs: number; perNodeMs: number; cpuMsPerNode: number };
  idle: { seconds: number; cpuPctPerNode: number; rssMiBPerNode: number; heapMiBPerNode: number; rssMiB: number };
  emitted: Record<Vis, number>;
  emitErrors: number;
  delivery: ReturnType<typeof account>;
  droppedAtReceiver: Record<string, number>;
  meanFanOut: number;
  steady: {
    seconds: number;
    deliveries: number;
    deliveriesPerSec: number;
    cpuPct: number;
    cpuMsPerNodePerSec: number;
    cpuUsPerDelivery: number;
    /** The same, less what the fleet costs idle (its polling and timers), per delivery. */
    marginalUsPerDelivery: number;
    elu: number;
    rssMiB: number;
    rssMiBPerNode: number;
    heapMiBPerNode: number;
    maxRssMiB: number;
  };
  tenths: Array<{ k: number; cpuUsPerDelivery: number; deliveries: number; elu: number; storedEventsPerNode: number }>;
  flatRatio: number;
  latencyMs: {
    all: ReturnType<typeof quantiles>;
    steady: ReturnType<typeof quantiles>;
    cluster: ReturnType<typeof quantiles>;
    public: ReturnType<typeof quantiles>;
    churnBacklog: ReturnType<typeof quantiles>;
    ownCommit: ReturnType<typeof quantiles>;
  };
  churn: { stopped: string[]; restarts: number; downS: number[] };
  garbage: {
    framesOnNetwork: number;
    injected: number;
    byKind: Record<string, number>;
    /** Refusals with a FRAME_* code: what garbage gets. */
    rejected: number;
    /** Refusals of real traffic (another code). */
    otherRefusals: number;
    rejectedByCode: Record<string, number>;
    nodesWithMismatch: string[];
  };
  drainMs: number;
  samples: Sample[];
  latencyPerSecond: Array<{ t: number; n: number; p50: number; p99: number }>;
}

async function runPhase(n: number, o: SimulateOptions, root: string, log: (s: string) => void, profileTo?: string, preseed = 0): Promise<PhaseResult> {
  const phaseStart = now();
  const rng = new Prng(o.seed).fork(n);
  const crng = rng.fork(1);
  const grng = rng.fork(2);
  const sizes = clusterSizes(n, crng);
  const dir = mkdtempSync(join(root, `weft-sim-${n}-`));
  const net = new MemoryNetwork();
  const nodes: SimNode[] = [];
  let ci = 0;
  for (const [c, size] of sizes.entries()) {
    for (let k = 0; k < size; k++, ci++) {
      const computer = `n${String(ci + 1).padStart(3, '0')}`;
      const d = join(dir, computer);
      mkdirSync(d, { recursive: true, mode: 0o700 });
      nodes.push({
        idx: ci,
        computer,
        cluster: `c${String(c + 1).padStart(2, '0')}`,
        clusterIdx: c,
        dir: d,
        nodeId: '',
        peers: [],
        a: undefined,
        state: 'down',
        rng: rng.fork(100 + ci),
        nextAt: 0,
        n: 0,
        rejectedBase: {},
        garbageIn: 0,
        restarts: 0,
        down: [],
        churn: undefined,
        received: new Map(),
      });
    }
  }
  const byName = new Map(nodes.map((s) => [s.computer, s]));

  // Garbage: after a real send, with the odds that make `garbage` the share of all frames.
  const garbageOdds = o.garbage > 0 && o.garbage < 1 ? o.garbage / (1 - o.garbage) : 0;
  let garbageOn = true;
  let realFrames = 0;
  let garbageFrames = 0;
  const byKind: Record<string, number> = { random: 0, truncated: 0, bitflip: 0 };
  const inject = (from: string, to: SimNode, real: Uint8Array) => {
    const kind = grng.int(0, 3);
    let bytes: Buffer;
    if (kind === 0) {
      bytes = grng.bytes(grng.int(1, 512));
      byKind.random = (byKind.random as number) + 1;
    } else if (kind === 1) {
      bytes = Buffer.from(real.subarray(0, grng.int(0, real.length)));
      byKind.truncated = (byKind.truncated as number) + 1;
    } else {
      bytes = Buffer.from(real);
      const flips = grng.int(1, 6);
      for (let i = 0; i < flips; i++) {
        const at = grng.int(0, bytes.length);
        bytes[at] = (bytes[at] as number) ^ (1 << grng.int(0, 8));
      }
      byKind.bitflip = (byKind.bitflip as number) + 1;
    }
    net.inbox(to.computer).append(from, bytes);
    to.garbageIn++;
    garbageFrames++;
  };
  const provider = (s: SimNode): ProviderFactory => (deps) => {
    const p = memoryProvider({ network: net, computer: s.computer })(deps);
    const send = p.send.bind(p);
    p.send = async (peer, bytes, opts) => {
      await send(peer, bytes, opts);
      if (!garbageOn) return;
      realFrames++;
      const to = byName.get(peer);
      if (to && garbageOdds > 0 && grng.next() < garbageOdds) inject(s.computer, to, bytes);
    };
    return p;
  };

  // Deliveries, as each receiver commits them.
  const deliveries: Delivery[] = [];
  const ownCommit: number[] = [];
  const droppedAtReceiver: Record<string, number> = {};
  let deliveriesCum = 0;
  const onCommit = (s: SimNode, b: CommittedBatch) => {
    const t = now();
    for (const e of b.passed) {
      if (e.event !== LOAD_EVENT) continue;
      const p = e.payload as { sentAt: number; note?: string };
      if (p.note === s.computer) {
        ownCommit.push(t - p.sentAt);
        continue;
      }
      deliveriesCum++;
      s.received.set(e.id, (s.received.get(e.id) ?? 0) + 1);
      deliveries.push({ r: s.idx, from: byName.get(p.note ?? '')?.idx ?? -1, id: e.id, vis: e.visibility as Vis, sent: p.sentAt, recv: t });
    }
    for (const d of b.dropped) {
      if (d.event.event !== LOAD_EVENT || (d.event.payload as { note?: string }).note === s.computer) continue;
      droppedAtReceiver[d.by] = (droppedAtReceiver[d.by] ?? 0) + 1;
    }
  };
  // The daemon's shipped defaults for what it passes to assembleNode (trust, recovery).
  const shipped: Pick<AssembleInit, 'system' | 'recovery'> = {
    system: {
      trust: {
        strictness: CONFIG_KEYS['trust.strictness'].default,
        rate: { perSecond: CONFIG_KEYS['trust.rate_per_second'].default, burst: CONFIG_KEYS['trust.rate_burst'].default },
      },
    },
    recovery: {
      enabled: CONFIG_KEYS['recovery.enabled'].default,
      beaconIntervalMs: CONFIG_KEYS['recovery.beacon_interval'].default * 1000,
      minCopies: CONFIG_KEYS['recovery.min_copies'].default,
      blockEvents: CONFIG_KEYS['recovery.block_events'].default,
    },
  };
  const assemble = (s: SimNode, peers: KnownPeer[]) =>
    assembleNode({ dataDir: s.dir, computer: s.computer, cluster: s.cluster, mesh: { provider: provider(s), peers }, ...shipped });
  const start = async (s: SimNode, assembled?: AssembledNode) => {
    s.state = 'starting';
    const a = assembled ?? (await assemble(s, s.peers));
    a.node.onCommitted((b) => onCommit(s, b));
    await a.start();
    s.a = a;
    s.state = 'up';
  };
  const stop = async (s: SimNode) => {
    const a = s.a;
    if (!a || s.state !== 'up') return;
    s.state = 'stopping';
    await a.stop();
    for (const [code, c] of Object.entries(a.mesh?.counters.rejected ?? {})) s.rejectedBase[code] = (s.rejectedBase[code] ?? 0) + c;
    s.a = undefined;
    s.state = 'down';
  };
  const rejectedOf = (s: SimNode): Record<string, number> => {
    const out = { ...s.rejectedBase };
    for (const [code, c] of Object.entries(s.a?.mesh?.counters.rejected ?? {})) out[code] = (out[code] ?? 0) + c;
    return out;
  };
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  const backlog = () => nodes.reduce((a, s) => {
    const b = net.backlog(s.computer);
    return a + b.waiting + b.pending;
  }, 0);
  const outboxDepth = () => {
    let d = 0;
    for (const s of nodes) {
      try {
        if (s.state === 'up' && s.a?.mesh) d += sum(s.a.mesh.outbox.depths());
      } catch {
        // Closing under us: counted at the next sample.
      }
    }
    return d;
  };
  const storedPerNode = () => {
    let total = 0;
    let up = 0;
    for (const s of nodes) {
      if (s.state !== 'up' || !s.a) continue;
      try {
        total += Number(s.a.node.ns.store.reader.prepare('SELECT COALESCE(MAX(rowid), 0) FROM events').pluck().get());
        up++;
      } catch {
        // Closing under us.
      }
    }
    return up > 0 ? total / up : 0;
  };

  // Sampling once a second, whatever the section.
  let section: Section = 'startup';
  const samples: Sample[] = [];
  let last = { t: now(), cpu: cpuUs(), d: 0, elu: performance.eventLoopUtilization() };
  let tick = 0;
  const sampler = setInterval(() => {
    const t = now();
    const cpu = cpuUs();
    const elu = performance.eventLoopUtilization();
    const mem = process.memoryUsage();
    const dt = (t - last.t) / 1000;
    samples.push({
      t: (t - phaseStart) / 1000,
      section,
      cpuPct: ((cpu - last.cpu) / 1e6 / dt) * 100,
      elu: performance.eventLoopUtilization(elu, last.elu).utilization,
      lateMs: Math.max(0, t - last.t - 1000),
      rssMiB: mem.rss / MiB,
      heapMiB: mem.heapUsed / MiB,
      deliveriesPerSec: (deliveriesCum - last.d) / dt,
      up: nodes.filter((s) => s.state === 'up').length,
      inboxBacklog: backlog(),
      ...(tick % 5 === 0 ? { outboxDepth: outboxDepth() } : {}),
      garbageInjected: garbageFrames,
      rejected: nodes.reduce((a, s) => a + sum(Object.fromEntries(Object.entries(rejectedOf(s)).filter(([c]) => c.startsWith('FRAME_')))), 0),
    });
    tick++;
    last = { t, cpu, d: deliveriesCum, elu };
  }, 1000);
  const snap = (withStored = false): Snap => ({ t: now(), cpu: cpuUs(), deliveries: deliveriesCum, elu: performance.eventLoopUtilization(), ...(withStored ? { storedPerNode: storedPerNode() } : {}) });

  const fresh: AssembledNode[] = [];
  try {
    // Start-up: one node after the other, as a fleet comes up.
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    const heap0 = process.memoryUsage().heapUsed;
    const s0 = snap();
    // Each node's key is made by its own first start (as a daemon's is: identityCreated, so
    // recovery starts in 'normal' mode); the peers are pinned before the mesh starts, as the
    // daemon does with the pinned peers of its config.
    for (const s of nodes) {
      const a = await assemble(s, []);
      s.nodeId = a.identity.nodeId;
      fresh.push(a);
    }
    for (const s of nodes) {
      s.peers = nodes
        .filter((p) => p !== s)
        .map((p) => ({ computer: p.computer, cluster: p.cluster, nodeId: p.nodeId, trustLevel: p.clusterIdx === s.clusterIdx ? 'peer' : 'share_to', origin: 'static' }));
      for (const p of s.peers) fresh[s.idx]?.peers.upsert({ ...p });
    }
    for (const s of nodes) await start(s, fresh[s.idx]);
    const s1 = snap();
    log(`  ${n} nodes started in ${fmt((s1.t - s0.t) / 1000, 1)} s (clusters ${sizes.join(', ')})`);
    // Settle: hellos and start-up beacons delivered.
    section = 'settle';
    const settleUntil = now() + 60_000;
    let quiet = 0;
    while (now() < settleUntil && quiet < 2) {
      await sleep(500);
      quiet = backlog() === 0 && outboxDepth() === 0 ? quiet + 1 : 0;
    }
    // The pre-seeded run: each node's log gets `preseed` local events first, through its own
    // pipeline (notifications, dedup keys, correlation counters: what a long-lived node holds).
    let seeded: PhaseResult['preseed'];
    if (preseed > 0) {
      const p0 = now();
      const chunk = 500;
      await Promise.all(
        nodes.map(async (s) => {
          for (let k = 0; k < preseed; k += chunk) {
            const batch = Array.from({ length: Math.min(chunk, preseed - k) }, (_, j) => ({ event: 'mesh.test.ping', visibility: 'local', payload: { n: k + j, note: 'preseed' } }));
            await s.a?.node.emitMany(batch);
          }
          await s.a?.node.idle(600_000);
        }),
      );
      const secs = (now() - p0) / 1000;
      seeded = { seconds: secs, eventsPerSec: (preseed * n) / secs, storedPerNode: storedPerNode() };
      log(`  pre-seeded ${fmt(preseed, 0)} local events per node in ${fmt(secs, 1)} s (${fmt(seeded.eventsPerSec, 0)} events/s); ${fmt(seeded.storedPerNode, 0)} stored per node`);
    }
    // Idle: what nodes cost with nothing to do.
    section = 'idle';
    const idleS = Math.min(5, Math.max(2, Math.round(o.seconds / 10)));
    const i0 = snap();
    await sleep(idleS * 1000);
    const i1 = snap();
    const idleMem = process.memoryUsage();

    // Load: warm-up (not measured), then the steady phase with churn and garbage.
    const warmS = Math.min(10, Math.max(1, Math.round(o.seconds / 10)));
    const S = o.seconds * 1000;
    const emitted = new Map<string, { from: number; vis: Vis; sent: number }>();
    const emittedBy: Record<Vis, number> = { local: 0, cluster: 0, public: 0 };
    let emitErrors = 0;
    const pending = new Set<Promise<unknown>>();
    const gap = (s: SimNode) => (-Math.log(1 - s.rng.next()) / o.rate) * 1000;
    const loadStart = now();
    const T0 = loadStart + warmS * 1000;
    const T1 = T0 + S;
    for (const s of nodes) s.nextAt = loadStart + gap(s);
    const churnCount = o.churn > 0 ? Math.min(n - 1, Math.max(1, Math.round(o.churn * n))) : 0;
    const churnRng = rng.fork(3);
    const order = nodes.map((s) => s.idx);
    for (let i = order.length - 1; i > 0; i--) {
      const j = churnRng.int(0, i + 1);
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const churned = order.slice(0, churnCount).map((i) => nodes[i] as SimNode);
    for (const s of churned) {
      const stopAt = T0 + S * (0.1 + 0.4 * churnRng.next());
      s.churn = { stopAt, upAt: stopAt + S * (0.1 + 0.2 * churnRng.next()) };
    }
    const churnOps = new Set<Promise<void>>();
    const tenthSnaps: Snap[] = [];
    let steadyStart: Snap | undefined;
    let profiler: Session | undefined;
    const steadyMem = { rss: 0, heap: 0, maxRss: 0, n: 0 };
    section = 'warmup';
    log(`  load: ${o.rate}/s per node, ${warmS} s warm-up, ${o.seconds} s steady; churn ${churned.map((s) => s.computer).join(', ') || 'none'}`);
    let lastProgress = now();
    for (;;) {
      const t = now();
      if (t >= T1) break;
      if (!steadyStart && t >= T0) {
        section = 'steady';
        if (profileTo) {
          profiler = new Session();
          profiler.connect();
          await profiler.post('Profiler.enable');
          await profiler.post('Profiler.start');
        }
        steadyStart = snap(true);
        tenthSnaps.push(steadyStart);
      }
      if (steadyStart && tenthSnaps.length < 10 && t >= T0 + (S * tenthSnaps.length) / 10) tenthSnaps.push(snap(true));
      for (const s of nodes) {
        if (s.state !== 'up' || !s.a) {
          if (s.nextAt < t) s.nextAt = t + gap(s);
          continue;
        }
        while (s.nextAt <= t) {
          s.nextAt += gap(s);
          const x = s.rng.next();
          const vis: Vis = x < MIX.public ? 'public' : x < MIX.public + MIX.cluster ? 'cluster' : 'local';
          const sentAt = now();
          s.n++;
          const p = s.a.node
            .emit({ event: LOAD_EVENT, visibility: vis, payload: { n: s.n, sentAt, note: s.computer } })
            .then(
              (e: Envelope) => {
                emitted.set(e.id, { from: s.idx, vis, sent: sentAt });
                emittedBy[vis]++;
              },
              () => {
                emitErrors++;
              },
            );
          pending.add(p);
          void p.then(() => pending.delete(p));
        }
        const c = s.churn;
        if (c && s.state === 'up' && s.restarts === 0 && t >= c.stopAt) {
          const op = (async () => {
            const downFrom = now();
            await stop(s);
            while (now() < c.upAt) await sleep(50);
            await start(s);
            s.restarts++;
            s.down.push([downFrom, now()]);
          })();
          churnOps.add(op);
        }
      }
      if (t - lastProgress >= 10_000) {
        lastProgress = t;
        const sm = samples[samples.length - 1];
        if (sm) log(`  ${fmt((t - loadStart) / 1000, 0)} s: ${fmt(sm.deliveriesPerSec, 0)} deliveries/s, CPU ${fmt(sm.cpuPct, 0)}%, loop busy ${fmt(sm.elu * 100, 0)}%, sampler late ${fmt(sm.lateMs, 0)} ms, ${sm.up}/${n} up, RSS ${fmt(sm.rssMiB, 0)} MiB`);
      }
      await sleep(10);
    }
    const steadyEnd = snap(true);
    if (profiler && profileTo) {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(profileTo, JSON.stringify(profile));
      profiler.disconnect();
      log(`  wrote a CPU profile of the steady phase to ${profileTo}`);
    }
    while (tenthSnaps.length < 10) tenthSnaps.push(steadyEnd);
    tenthSnaps.push(steadyEnd);
    steadyStart ??= tenthSnaps[0] as Snap;
    for (const sm of samples) {
      if (sm.section !== 'steady') continue;
      steadyMem.rss += sm.rssMiB;
      steadyMem.heap += sm.heapMiB;
      steadyMem.maxRss = Math.max(steadyMem.maxRss, sm.rssMiB * MiB);
      steadyMem.n++;
    }
    // Drain: every emit resolved, every churned node back, then wait for what is owed.
    section = 'drain';
    await Promise.allSettled([...pending]);
    await Promise.allSettled([...churnOps]);
    garbageOn = false;
    const drainStart = now();
    const drainLimit = Math.max(120_000, 2 * S);
    let stable = 0;
    for (;;) {
      await sleep(1000);
      const acc = account(nodes, emitted);
      const done = acc.lost === 0 && backlog() === 0;
      stable = done ? stable + 1 : 0;
      if (stable >= 2 || now() - drainStart > drainLimit) break;
    }
    // A last pass for late duplicates and refusals still queued.
    const quietUntil = now() + 10_000;
    while (now() < quietUntil && (backlog() > 0 || outboxDepth() > 0)) await sleep(500);
    const drainMs = now() - drainStart;
    const delivery = account(nodes, emitted);
    log(`  drained in ${fmt(drainMs / 1000, 1)} s: ${delivery.delivered}/${delivery.expected} delivered, ${delivery.lost} lost, ${delivery.duplicated} duplicated`);

    // Latency: a delivery is churn backlog when either end was down between emit and commit.
    const wasDown = (s: SimNode, a: number, b: number) => s.down.some(([x, y]) => x <= b && y >= a);
    const lat = { all: [] as number[], steady: [] as number[], cluster: [] as number[], public: [] as number[], backlog: [] as number[] };
    const perSecond = new Map<number, number[]>();
    for (const d of deliveries) {
      const l = d.recv - d.sent;
      lat.all.push(l);
      const r = nodes[d.r] as SimNode;
      const f = nodes[d.from];
      if (wasDown(r, d.sent, d.recv) || (f && wasDown(f, d.sent, d.recv))) lat.backlog.push(l);
      else {
        lat.steady.push(l);
        if (d.vis === 'cluster') lat.cluster.push(l);
        else if (d.vis === 'public') lat.public.push(l);
      }
      const sec = Math.floor((d.recv - phaseStart) / 1000);
      const bin = perSecond.get(sec) ?? [];
      if (bin.length === 0) perSecond.set(sec, bin);
      bin.push(l);
    }
    const latencyPerSecond = [...perSecond.keys()]
      .sort((a, b) => a - b)
      .map((t) => {
        const b = (perSecond.get(t) as number[]).sort((x, y) => x - y);
        return { t, n: b.length, p50: percentile(b, 50), p99: percentile(b, 99) };
      });

    // Stop everything, then count refusals (a stop finishes the batch in flight).
    section = 'drain';
    await Promise.all(nodes.map((s) => stop(s)));
    // Garbage can only fail as a frame (magic, layout, CRC, sender, signature): FRAME_* codes.
    // Anything else refused is real traffic refused (MESSAGE_BUSY under load), reported apart.
    const rejectedByCode: Record<string, number> = {};
    const mismatch: string[] = [];
    let garbageRefused = 0;
    for (const s of nodes) {
      const r = rejectedOf(s);
      for (const [code, c] of Object.entries(r)) rejectedByCode[code] = (rejectedByCode[code] ?? 0) + c;
      const g = sum(Object.fromEntries(Object.entries(r).filter(([code]) => code.startsWith('FRAME_'))));
      garbageRefused += g;
      if (g !== s.garbageIn) mismatch.push(`${s.computer}: ${s.garbageIn} injected, ${g} refused as frames`);
    }

    const win = (a: Snap, b: Snap) => {
      const d = b.deliveries - a.deliveries;
      return { cpuUs: b.cpu - a.cpu, deliveries: d, seconds: (b.t - a.t) / 1000, elu: performance.eventLoopUtilization(b.elu, a.elu).utilization };
    };
    const st = win(steadyStart, steadyEnd);
    const tenths = tenthSnaps.slice(0, 10).map((a, k) => {
      const b = tenthSnaps[k + 1] as Snap;
      const w = win(a, b);
      return { k, cpuUsPerDelivery: w.deliveries > 0 ? w.cpuUs / w.deliveries : Number.NaN, deliveries: w.deliveries, elu: w.elu, storedEventsPerNode: a.storedPerNode ?? Number.NaN };
    });
    const first = tenths[0];
    const lastT = tenths[tenths.length - 1];
    const nonLocal = emittedBy.cluster + emittedBy.public;
    const idle = win(i0, i1);
    const steadyRss = steadyMem.n > 0 ? steadyMem.rss / steadyMem.n : process.memoryUsage().rss / MiB;
    const steadyHeap = steadyMem.n > 0 ? steadyMem.heap / steadyMem.n : process.memoryUsage().heapUsed / MiB;
    const result: PhaseResult = {
      nodes: n,
      rate: o.rate,
      preseeded: preseed,
      ...(seeded ? { preseed: seeded } : {}),
      clusters: sizes,
      wallS: (now() - phaseStart) / 1000,
      startup: { totalMs: s1.t - s0.t, perNodeMs: (s1.t - s0.t) / n, cpuMsPerNode: (s1.cpu - s0.cpu) / 1000 / n },
      idle: {
        seconds: idle.seconds,
        cpuPctPerNode: (idle.cpuUs / 1e6 / idle.seconds / n) * 100,
        rssMiBPerNode: (idleMem.rss - rss0) / MiB / n,
        heapMiBPerNode: (idleMem.heapUsed - heap0) / MiB / n,
        rssMiB: idleMem.rss / MiB,
      },
      emitted: emittedBy,
      emitErrors,
      delivery,
      droppedAtReceiver,
      meanFanOut: nonLocal > 0 ? delivery.expected / nonLocal : 0,
      steady: {
        seconds: st.seconds,
        deliveries: st.deliveries,
        deliveriesPerSec: st.deliveries / st.seconds,
        cpuPct: (st.cpuUs / 1e6 / st.seconds) * 100,
        cpuMsPerNodePerSec: st.cpuUs / 1000 / st.seconds / n,
        cpuUsPerDelivery: st.deliveries > 0 ? st.cpuUs / st.deliveries : Number.NaN,
        marginalUsPerDelivery: st.deliveries > 0 ? (st.cpuUs - (idle.cpuUs / idle.seconds) * st.seconds) / st.deliveries : Number.NaN,
        elu: st.elu,
        rssMiB: steadyRss,
        rssMiBPerNode: (steadyRss * MiB - rss0) / MiB / n,
        heapMiBPerNode: (steadyHeap * MiB - heap0) / MiB / n,
        maxRssMiB: steadyMem.maxRss / MiB,
      },
      tenths,
      flatRatio: first && lastT ? lastT.cpuUsPerDelivery / first.cpuUsPerDelivery : Number.NaN,
      latencyMs: {
        all: quantiles(lat.all),
        steady: quantiles(lat.steady),
        cluster: quantiles(lat.cluster),
        public: quantiles(lat.public),
        churnBacklog: quantiles(lat.backlog),
        ownCommit: quantiles(ownCommit),
      },
      churn: { stopped: churned.map((s) => s.computer), restarts: churned.reduce((a, s) => a + s.restarts, 0), downS: churned.flatMap((s) => s.down.map(([a, b]) => (b - a) / 1000)) },
      garbage: {
        framesOnNetwork: realFrames + garbageFrames,
        injected: garbageFrames,
        byKind,
        rejected: garbageRefused,
        otherRefusals: sum(rejectedByCode) - garbageRefused,
        rejectedByCode,
        nodesWithMismatch: mismatch,
      },
      drainMs,
      samples,
      latencyPerSecond,
    };
    return result;
  } finally {
    clearInterval(sampler);
    await Promise.all(nodes.map((s) => stop(s).catch(() => undefined)));
    await Promise.all(fresh.map((a) => a.stop().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface SimulationReport {
  summary: Record<string, unknown>;
  goals: Goal[];
  /** Fleet sizes, smallest first. */
  phases: PhaseResult[];
  /** The largest fleet again over a pre-seeded log (with `preseed`). */
  seeded?: PhaseResult;
  files: { json: string; html: string };
  ok: boolean;
}

/**
 * Runs the simulation at each fleet size, writes report.json and report.html into `o.out`.
 * @example
 * const r = await runSimulation({ nodes: 6, seconds: 5, rate: 2, seed: 1, churn: 0.05, garbage: 0.01, out: '/tmp/sim' });
 * console.log(r.phases.at(-1)?.delivery.lost); // 0
 */
export async function runSimulation(o: SimulateOptions): Promise<SimulationReport> {
  const log = o.log ?? ((s: string) => console.log(s));
  const started = now();
  const load0 = loadavg();
  const data = chooseDataRoot(o.dataRoot);
  // Largest first: its memory per node is measured from a bare process, not over the pages
  // a finished run left behind.
  const sizes = (o.sizes ?? defaultSizes(o.nodes)).slice().sort((a, b) => b - a);
  const largest = sizes[0] as number;
  // What each fleet would be asked for at `rate` (each event to its cluster, or to all), and the
  // rate that keeps it within the cap.
  const cap = o.maxDeliveries ?? 100;
  const plan = sizes.map((n) => {
    const layout = clusterSizes(n, new Prng(o.seed).fork(n).fork(1));
    const fanOut = (MIX.cluster * layout.reduce((a, k) => a + k * (k - 1), 0) + MIX.public * n * (n - 1)) / n;
    const demand = o.rate * n * fanOut;
    return { n, fanOut, demand, rate: cap > 0 && demand > cap ? Number((o.rate * (cap / demand)).toPrecision(2)) : o.rate };
  });
  const rateOf = (n: number) => plan.find((p) => p.n === n)?.rate ?? o.rate;
  const lowered = plan.some((p) => p.rate !== o.rate);
  const rateNote = lowered
    ? `events/s per node: ${plan.map((p) => `${p.rate} at ${p.n} nodes`).join(', ')} (asked: ${o.rate}); at ${o.rate} the fleets would be asked for ${plan.map((p) => fmt(p.demand, 0)).join(' / ')} deliveries/s (${plan.map((p) => fmt(p.fanOut, 1)).join(' / ')} per event), more than the ${cap}/s one event loop is given here (--max-deliveries); each run is asked for about the same deliveries per second, so the runs differ in their number of peers`
    : `${o.rate} events/s per node as asked (the fleets are asked for ${plan.map((p) => fmt(p.demand, 0)).join(' / ')} deliveries/s)`;
  log(`simulate: ${sizes.join(', ')} nodes in one process over the memory transport, seed ${o.seed}; ${rateNote}; data in ${data.root} (${data.reason})`);
  const phases: PhaseResult[] = [];
  mkdirSync(o.out, { recursive: true });
  for (const n of sizes) {
    log(`phase: ${n} nodes`);
    phases.push(await runPhase(n, { ...o, rate: rateOf(n) }, data.root, log, o.profile && n === largest ? join(o.out, 'steady.cpuprofile') : undefined));
  }
  // The same fleet, clusters, schedule and churn again, over a pre-seeded log.
  let seeded: PhaseResult | undefined;
  if ((o.preseed ?? 0) > 0) {
    log(`phase: ${largest} nodes, ${fmt(o.preseed ?? 0, 0)} events pre-seeded per node`);
    seeded = await runPhase(largest, { ...o, rate: rateOf(largest) }, data.root, log, undefined, o.preseed);
  }
  // Reported smallest first.
  phases.reverse();
  const main = phases[phases.length - 1] as PhaseResult;
  const smallest = phases[0] as PhaseResult;
  const all = seeded ? [...phases, seeded] : phases;
  const lost = all.reduce((a, p) => a + p.delivery.lost, 0);
  const duplicated = all.reduce((a, p) => a + p.delivery.duplicated, 0);
  const unexpected = all.reduce((a, p) => a + p.delivery.unexpected, 0);
  const injected = all.reduce((a, p) => a + p.garbage.injected, 0);
  const rejected = all.reduce((a, p) => a + p.garbage.rejected, 0);
  const mismatches = all.flatMap((p) => p.garbage.nodesWithMismatch.map((m) => `${p.nodes} nodes${p.preseeded ? ' (pre-seeded)' : ''}: ${m}`));
  const linear = main.steady.cpuUsPerDelivery / smallest.steady.cpuUsPerDelivery;
  const seededRatio = seeded ? seeded.steady.cpuUsPerDelivery / main.steady.cpuUsPerDelivery : Number.NaN;
  const goals: Goal[] = [
    { name: 'exactly once after churn', target: '0 lost, 0 duplicated, 0 misrouted', value: `${lost} lost, ${duplicated} duplicated, ${unexpected} misrouted`, met: lost === 0 && duplicated === 0 && unexpected === 0 },
    { name: 'garbage refused and recorded', target: 'each receiver refuses exactly what was injected into its inbox', value: `${rejected} refused of ${injected} injected${mismatches.length ? `; ${mismatches.length} nodes differ` : ''}`, met: mismatches.length === 0 && rejected === injected },
    ...(phases.length > 1
      ? [{ name: 'linear in fan-out', target: `CPU-µs per delivery at ${main.nodes} nodes within 1.5× of ${smallest.nodes}`, value: `${fmt(main.steady.cpuUsPerDelivery, 0)} vs ${fmt(smallest.steady.cpuUsPerDelivery, 0)} µs (${fmt(linear, 2)}×)`, met: linear <= 1.5 }]
      : []),
    { name: 'flat in stored events', target: 'CPU-µs per delivery in the last tenth within 1.5× of the first', value: `${fmt(main.tenths[9]?.cpuUsPerDelivery ?? Number.NaN, 0)} vs ${fmt(main.tenths[0]?.cpuUsPerDelivery ?? Number.NaN, 0)} µs (${fmt(main.flatRatio, 2)}×; ${fmt(main.tenths[0]?.storedEventsPerNode ?? 0, 0)} → ${fmt(main.tenths[9]?.storedEventsPerNode ?? 0, 0)} stored events per node)`, met: main.flatRatio <= 1.5 },
    ...(seeded
      ? [
          {
            name: 'flat in stored events (pre-seeded log)',
            target: `CPU-µs per delivery with ${fmt(seeded.preseeded, 0)} events pre-seeded per node within 1.5× of the fresh ${main.nodes}-node run`,
            value: `${fmt(seeded.steady.cpuUsPerDelivery, 0)} vs ${fmt(main.steady.cpuUsPerDelivery, 0)} µs (${fmt(seededRatio, 2)}×; ${fmt(seeded.tenths[0]?.storedEventsPerNode ?? 0, 0)} vs ${fmt(main.tenths[0]?.storedEventsPerNode ?? 0, 0)} stored events per node at the start of the steady phase)`,
            met: seededRatio <= 1.5,
          },
        ]
      : []),
  ];
  const wallS = (now() - started) / 1000;
  const changed = [
    ...(lowered ? [`rate ${rateNote}`] : []),
    ...(data.root !== tmpdir() ? [`data dirs on ${data.root}: ${data.reason}`] : []),
    'no daemon around the nodes (no HTTP API, WebSocket, log file, sovereignty runtime or domain runner): the mesh, pipeline and stores are the daemon\'s own (assembleNode)',
    'logger silent (the daemon writes info logs to a file)',
  ];
  const summary = {
    date: new Date().toISOString(),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, ramGiB: Math.round(totalmem() / 1024 ** 3), node: process.version, loadAvgAtStart: load0.map((x) => Number(x.toFixed(2))) },
    config: {
      nodes: o.nodes,
      sizes,
      seconds: o.seconds,
      ratePerNode: Object.fromEntries(plan.map((p) => [p.n, p.rate])),
      rateAsked: o.rate,
      rateNote,
      maxDeliveries: cap,
      seed: o.seed,
      churn: o.churn,
      garbage: o.garbage,
      mix: { public: MIX.public, cluster: MIX.cluster, local: 1 - MIX.public - MIX.cluster },
      transport: 'memory (one process)',
      trust: `shipped: ${CONFIG_KEYS['trust.strictness'].default}, ${CONFIG_KEYS['trust.rate_per_second'].default}/s per source, burst ${CONFIG_KEYS['trust.rate_burst'].default} (peer level 20,000/s); not changed: the rate per node is far below it`,
      recovery: `shipped: enabled ${CONFIG_KEYS['recovery.enabled'].default}, beacon every ${CONFIG_KEYS['recovery.beacon_interval'].default} s, ${CONFIG_KEYS['recovery.min_copies'].default} copies`,
      mesh: 'shipped MeshInit defaults (256 envelopes per frame, 64 frames in flight, resend after 5 s)',
      dataRoot: data.root,
      fsyncProbeMs: data.probes,
      changedFromDefaults: changed,
    },
    wallS,
    main: {
      nodes: main.nodes,
      clusters: main.clusters,
      latencyMs: main.latencyMs,
      perNode: {
        cpuMsPerSec: main.steady.cpuMsPerNodePerSec,
        cpuPctOfCore: main.steady.cpuMsPerNodePerSec / 10,
        rssMiB: main.steady.rssMiBPerNode,
        heapMiB: main.steady.heapMiBPerNode,
        idleCpuPctOfCore: main.idle.cpuPctPerNode,
        idleRssMiB: main.idle.rssMiBPerNode,
        startupMs: main.startup.perNodeMs,
      },
      processCpuPct: main.steady.cpuPct,
      eventLoopBusy: main.steady.elu,
      deliveriesPerSec: main.steady.deliveriesPerSec,
      cpuUsPerDelivery: main.steady.cpuUsPerDelivery,
      flatRatio: main.flatRatio,
    },
    ...(seeded
      ? {
          preseeded: {
            eventsPerNode: seeded.preseeded,
            seeding: seeded.preseed,
            cpuUsPerDelivery: seeded.steady.cpuUsPerDelivery,
            marginalUsPerDelivery: seeded.steady.marginalUsPerDelivery,
            ratioToFresh: seededRatio,
            latencyMs: seeded.latencyMs.steady,
            rssMiBPerNode: seeded.steady.rssMiBPerNode,
          },
        }
      : {}),
    scaling: phases.map((p) => ({ nodes: p.nodes, ratePerNode: p.rate, meanFanOut: p.meanFanOut, deliveriesPerSec: p.steady.deliveriesPerSec, cpuUsPerDelivery: p.steady.cpuUsPerDelivery, marginalUsPerDelivery: p.steady.marginalUsPerDelivery, cpuMsPerNodePerSec: p.steady.cpuMsPerNodePerSec, idleCpuPctPerNode: p.idle.cpuPctPerNode, rssMiBPerNode: p.steady.rssMiBPerNode, eventLoopBusy: p.steady.elu })),
    delivery: { lost, duplicated, unexpected, byPhase: all.map((p) => ({ nodes: p.nodes, preseeded: p.preseeded, ...p.delivery, droppedAtReceiver: p.droppedAtReceiver })) },
    garbage: { injected, rejected, byPhase: all.map((p) => ({ nodes: p.nodes, preseeded: p.preseeded, ...p.garbage })) },
    churn: all.map((p) => ({ nodes: p.nodes, preseeded: p.preseeded, ...p.churn })),
  };
  const ok = goals[0]?.met === true && goals[1]?.met === true;
  mkdirSync(o.out, { recursive: true });
  const files = { json: join(o.out, 'report.json'), html: join(o.out, 'report.html') };
  writeFileSync(files.json, `${JSON.stringify({ summary, goals, phases, seeded }, null, 1)}\n`);
  writeFileSync(files.html, html(summary, goals, phases, main, seeded));
  const table = rows(summary, goals, phases, main, seeded);
  for (const [k, v] of table) log(`  ${k.padEnd(34)} ${v}`);
  log(`wrote ${files.json} and ${files.html}`);
  return { summary, goals, phases, ...(seeded ? { seeded } : {}), files, ok };
}

function q(l: { p50: number; p90: number; p99: number; max: number; n: number }): string {
  return `${fmt(l.p50, 1)} / ${fmt(l.p90, 1)} / ${fmt(l.p99, 1)} / ${fmt(l.max, 0)} ms (${fmt(l.n, 0)})`;
}

function rows(summary: Record<string, unknown>, goals: Goal[], phases: PhaseResult[], main: PhaseResult, seeded?: PhaseResult): Array<[string, string]> {
  const m = summary.machine as { cores: number; cpu: string; ramGiB: number; node: string; loadAvgAtStart: number[] };
  const c = summary.config as { seed: number; churn: number; garbage: number; ratePerNode: Record<string, number>; rateNote: string; seconds: number; dataRoot: string; changedFromDefaults: string[] };
  const sent = main.emitted;
  return [
    ['date', String(summary.date)],
    ['machine', `${m.cores} cores, ${m.cpu}, ${m.ramGiB} GiB, Node ${m.node}; load average at start ${m.loadAvgAtStart.join(' / ')}`],
    ['run', `${phases.map((p) => `${p.nodes} nodes at ${p.rate}`).join(', ')} events/s per node, ${c.seconds} s steady each, seed ${c.seed}, churn ${c.churn}, garbage ${c.garbage}`],
    ['rate', c.rateNote],
    ['changed from the defaults', c.changedFromDefaults.join('; ')],
    ['clusters (largest run)', `${main.clusters.length}: ${main.clusters.join(', ')}`],
    ['emitted (largest run)', `${sent.public} public, ${sent.cluster} cluster, ${sent.local} local; ${main.emitErrors} failed; mean fan-out ${fmt(main.meanFanOut, 1)}`],
    ['delivered / expected', `${main.delivery.delivered} / ${main.delivery.expected}: ${main.delivery.lost} lost, ${main.delivery.duplicated} duplicated, ${main.delivery.unexpected} misrouted`],
    ['latency p50 / p90 / p99 / max (n)', `steady ${q(main.latencyMs.steady)}`],
    ['  cluster', q(main.latencyMs.cluster)],
    ['  public', q(main.latencyMs.public)],
    ['  to or from a restarted node', q(main.latencyMs.churnBacklog)],
    ['  all deliveries', q(main.latencyMs.all)],
    ['  emit → own commit', q(main.latencyMs.ownCommit)],
    ['deliveries per second', `${fmt(main.steady.deliveriesPerSec, 0)} (steady phase)`],
    ['process CPU / event loop busy', `${fmt(main.steady.cpuPct, 0)}% of one core / ${fmt(main.steady.elu * 100, 0)}%`],
    ['per node: CPU, RSS, heap', `${fmt(main.steady.cpuMsPerNodePerSec, 2)} ms CPU per s (${fmt(main.steady.cpuMsPerNodePerSec / 10, 2)}% of a core), ${fmt(main.steady.rssMiBPerNode, 1)} MiB RSS, ${fmt(main.steady.heapMiBPerNode, 1)} MiB heap`],
    ['per node idle: CPU, RSS', `${fmt(main.idle.cpuPctPerNode, 2)}% of a core, ${fmt(main.idle.rssMiBPerNode, 1)} MiB; start-up ${fmt(main.startup.perNodeMs, 0)} ms`],
    ['process RSS (steady mean / max)', `${fmt(main.steady.rssMiB, 0)} / ${fmt(main.steady.maxRssMiB, 0)} MiB`],
    ...phases.map((p): [string, string] => [
      `CPU-µs per delivery at ${p.nodes} nodes`,
      `${fmt(p.steady.cpuUsPerDelivery, 0)} µs, ${fmt(p.steady.marginalUsPerDelivery, 0)} above idle (${p.rate} events/s per node, fan-out ${fmt(p.meanFanOut, 1)}, ${fmt(p.steady.deliveriesPerSec, 0)} deliveries/s, ${fmt(p.steady.cpuMsPerNodePerSec, 2)} ms CPU per node per s, idle ${fmt(p.idle.cpuPctPerNode, 2)}% per node)`,
    ]),
    ['first / last tenth (largest run)', `${fmt(main.tenths[0]?.cpuUsPerDelivery ?? Number.NaN, 0)} / ${fmt(main.tenths[9]?.cpuUsPerDelivery ?? Number.NaN, 0)} µs per delivery, ratio ${fmt(main.flatRatio, 2)}`],
    ...(seeded
      ? [
          [
            `pre-seeded run (${seeded.nodes} nodes)`,
            `${fmt(seeded.preseeded, 0)} local events per node written first in ${fmt(seeded.preseed?.seconds ?? Number.NaN, 0)} s (${fmt(seeded.preseed?.eventsPerSec ?? Number.NaN, 0)} events/s); ${fmt(seeded.steady.cpuUsPerDelivery, 0)} µs per delivery (${fmt(seeded.steady.marginalUsPerDelivery, 0)} above idle), ${fmt(seeded.steady.deliveriesPerSec, 0)} deliveries/s, latency p50 / p99 ${fmt(seeded.latencyMs.steady.p50, 1)} / ${fmt(seeded.latencyMs.steady.p99, 1)} ms, ${fmt(seeded.steady.rssMiBPerNode, 1)} MiB RSS per node; ${seeded.delivery.lost} lost, ${seeded.delivery.duplicated} duplicated`,
          ] as [string, string],
        ]
      : []),
    ['garbage (all runs)', [...phases, ...(seeded ? [seeded] : [])].map((p) => `${p.nodes} nodes${p.preseeded ? ' pre-seeded' : ''}: ${p.garbage.injected} of ${p.garbage.framesOnNetwork} frames injected (${Object.entries(p.garbage.byKind).map(([k, v]) => `${v} ${k}`).join(', ')}), ${p.garbage.rejected} refused`).join('; ')],
    ['refusals by code (largest run)', Object.entries(main.garbage.rejectedByCode).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'],
    ['churn (largest run)', `${main.churn.stopped.join(', ') || 'none'} stopped and restarted (down ${main.churn.downS.map((s) => fmt(s, 1)).join(', ')} s); drain after the load ${fmt(main.drainMs / 1000, 1)} s`],
    ...goals.map((g): [string, string] => [`goal: ${g.name}`, `${g.met ? 'met' : 'NOT MET'}: ${g.value} (target ${g.target})`]),
    ['wall time', `${fmt(Number(summary.wallS), 0)} s`],
  ];
}

function html(summary: Record<string, unknown>, goals: Goal[], phases: PhaseResult[], main: PhaseResult, seeded?: PhaseResult): string {
  const pts = (pick: (s: Sample) => number | undefined): Array<[number, number]> =>
    main.samples.filter((s) => pick(s) !== undefined).map((s) => [s.t, pick(s) as number]);
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const chart = (...a: Parameters<typeof lineChart>) => lineChart(...a).replace(/^<svg ([^>]*)>/, `<svg $1 role="img"><title>${esc(a[0])}</title>`);
  const byNodes = (svg: string) => svg.replace(/(text-anchor="middle">[\d.]+) s<\/text>/g, '$1 nodes</text>');
  const scaling: Series[] = [
    { name: 'CPU-µs per delivery', points: phases.map((p) => [p.nodes, p.steady.cpuUsPerDelivery]) },
    { name: 'the same above idle', points: phases.map((p) => [p.nodes, p.steady.marginalUsPerDelivery]) },
    { name: 'ms CPU per node per s × 100', points: phases.map((p) => [p.nodes, p.steady.cpuMsPerNodePerSec * 100]) },
  ];
  const charts = [
    chart(`Deliveries per second and nodes up (${main.nodes} nodes)`, 'per second / nodes', [
      { name: 'deliveries/s', points: pts((s) => s.deliveriesPerSec) },
      { name: 'nodes up', points: pts((s) => s.up) },
    ]),
    chart('Delivery latency per second (emit → committed on the receiver)', 'ms (log)', [
      { name: 'p50', points: main.latencyPerSecond.map((x) => [x.t, x.p50]) },
      { name: 'p99', points: main.latencyPerSecond.map((x) => [x.t, x.p99]) },
    ], { logY: true }),
    chart('Process CPU and event loop', '% of one core', [
      { name: 'CPU %', points: pts((s) => s.cpuPct) },
      { name: 'loop busy %', points: pts((s) => s.elu * 100) },
      { name: 'sampler late (ms)', points: pts((s) => s.lateMs) },
    ]),
    chart('Process memory', 'MiB', [
      { name: 'RSS', points: pts((s) => s.rssMiB) },
      { name: 'heap used', points: pts((s) => s.heapMiB) },
    ]),
    chart('Backlogs: frames in inboxes, rows in outboxes', 'frames / rows', [
      { name: 'inbox frames', points: pts((s) => s.inboxBacklog) },
      { name: 'outbox rows', points: pts((s) => s.outboxDepth) },
    ]),
    chart('Garbage injected vs refused (cumulative)', 'frames', [
      { name: 'injected', points: pts((s) => s.garbageInjected) },
      { name: 'refused', points: pts((s) => s.rejected) },
    ]),
    byNodes(chart('Cost against fleet size (x: nodes)', 'µs / ms×100', scaling)),
    chart('CPU-µs per delivery by tenth of the steady phase (x: end of the tenth)', 'µs / events', [
      { name: 'µs per delivery', points: main.tenths.map((t) => [((t.k + 1) * main.steady.seconds) / 10, t.cpuUsPerDelivery]) },
      { name: 'stored events per node', points: main.tenths.map((t) => [((t.k + 1) * main.steady.seconds) / 10, t.storedEventsPerNode]) },
      ...(seeded
        ? [
            { name: 'µs per delivery, pre-seeded', points: seeded.tenths.map((t): [number, number] => [((t.k + 1) * seeded.steady.seconds) / 10, t.cpuUsPerDelivery]) },
            { name: 'stored per node, pre-seeded', points: seeded.tenths.map((t): [number, number] => [((t.k + 1) * seeded.steady.seconds) / 10, t.storedEventsPerNode]) },
          ]
        : []),
    ]),
  ];
  const table = rows(summary, goals, phases, main, seeded);
  // The page lives under bench/, which Biome lints: a language and a title per chart.
  return htmlPage(`Weft ${main.nodes}-node simulation (memory transport, one process)`, table, charts, { summary, goals }).replace('<html>', '<html lang="en">');
}

export const SIMULATE_USAGE = `Usage: npm run simulate -- [options]

Runs a fleet of whole Weft nodes in this one process over the memory transport, at several fleet
sizes one after the other, and writes report.json and report.html (bench/simulate.ts says more).

Options:
  --nodes <n>            nodes of the largest run, 2 to 1000 (default 100)
  --seconds <s>          seconds of steady load per fleet size, 1 to 3600 (default 60)
  --rate <r>             events per second each node emits, above 0 (default 2)
  --max-deliveries <n>   deliveries per second a fleet may be asked for; a higher demand lowers
                         every run's rate to fit (default 100; 0: no cap)
  --seed <k>             seed of every random choice, a whole number (default: random, printed)
  --churn <f>            share of the nodes stopped and restarted during the load, 0 to 1 (default 0.05)
  --garbage <f>          share of the frames that are garbage, 0 to 1 (default 0.01)
  --sizes <a,b,...>      fleet sizes, each 2 to 1000 (default: nodes/4, nodes/2, nodes, each at least 5)
  --data-root <dir>      where the nodes' data dirs go, or auto: tmpdir, /dev/shm when its fsync is slow (default auto)
  --preseed <k>          local events written into each node before one more run of the largest
                         fleet, 0 for none (default 10000)
  --out <dir>            where the report goes (default bench/results/simulate-<date>)
  --profile              write a CPU profile of the largest run's steady phase
  -h, --help             show this help

Example: npm run simulate -- --nodes 10 --seconds 10 --preseed 0
`;

/**
 * The options of a command line, checked: a usage error (an Error whose message says what to
 * fix) for an unknown flag, a flag without its value or a value out of range; undefined for --help.
 * @example
 * parseSimulateArgs(['--nodes', '10'], new Date('2026-12-07')).nodes; // 10
 */
export function parseSimulateArgs(argv: readonly string[], today: Date): SimulateOptions | undefined {
  const takes = new Set(['nodes', 'seconds', 'rate', 'max-deliveries', 'seed', 'churn', 'garbage', 'sizes', 'data-root', 'preseed', 'out']);
  const given = new Map<string, string>();
  let profile = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') return undefined;
    if (a === '--profile') {
      profile = true;
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? a.slice(2, eq === -1 ? undefined : eq) : '';
    if (!takes.has(name)) throw new Error(`unknown option '${a}' (npm run simulate -- --help lists them)`);
    const v = eq === -1 ? argv[++i] : a.slice(eq + 1);
    if (v === undefined || v === '' || (eq === -1 && v.startsWith('--'))) throw new Error(`--${name} needs a value`);
    given.set(name, v);
  }
  const num = (name: string, dflt: number, min: number, max: number, whole: boolean): number => {
    const v = given.get(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!/^-?\d+(\.\d+)?$/.test(v) || !Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
      throw new Error(`--${name} must be ${whole ? 'a whole number' : 'a number'} from ${min} to ${max}, got '${v}'`);
    }
    return n;
  };
  const rate = num('rate', 2, 0, 1_000_000, false);
  if (rate === 0) throw new Error(`--rate must be above 0, got '${given.get('rate')}'`);
  const sizesText = given.get('sizes');
  const sizes = sizesText?.split(',').map((x) => {
    const n = Number(x.trim());
    if (!/^\d+$/.test(x.trim()) || n < 2 || n > 1000) throw new Error(`--sizes takes fleet sizes from 2 to 1000, separated by commas, got '${sizesText}'`);
    return n;
  });
  if (sizes && new Set(sizes).size !== sizes.length) throw new Error(`--sizes lists a size twice: '${sizesText}'`);
  // The largest size is the main run: a --nodes beside --sizes that says otherwise is a mistake.
  if (sizes && given.has('nodes') && num('nodes', 0, 2, 1000, true) !== Math.max(...sizes)) {
    throw new Error(`--nodes ${given.get('nodes')} and --sizes ${sizesText} disagree: the largest size is the main run's node count (give one of them)`);
  }
  return {
    nodes: sizes ? Math.max(...sizes) : num('nodes', 100, 2, 1000, true),
    seconds: num('seconds', 60, 1, 3600, true),
    rate,
    maxDeliveries: num('max-deliveries', 100, 0, 100_000_000, true),
    seed: num('seed', randomSeed(), 0, 2 ** 32 - 1, true),
    churn: num('churn', 0.05, 0, 1, false),
    garbage: num('garbage', 0.01, 0, 1, false),
    ...(sizes ? { sizes } : {}),
    dataRoot: given.get('data-root') ?? 'auto',
    profile,
    preseed: num('preseed', 10_000, 0, 10_000_000, true),
    out: given.get('out') ?? join('bench', 'results', `simulate-${today.toISOString().slice(0, 10)}`),
  };
}

if (process.argv[1]?.endsWith('simulate.js')) {
  let o: SimulateOptions | undefined;
  try {
    o = parseSimulateArgs(process.argv.slice(2), new Date());
  } catch (err) {
    process.stderr.write(`simulate: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (!o) {
    process.stdout.write(SIMULATE_USAGE);
    process.exit(0);
  }
  const r = await runSimulation(o);
  process.exit(r.ok ? 0 : 1);
}
