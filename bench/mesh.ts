/**
 * Mesh benchmark with whole nodes (identity, six-stage pipeline, publisher, outbox, signed
 * frames, verified ingress, SQLite commits on both sides), in one process:
 *   - A → B events/s over memory, Redis and TLS
 *   - emit on A → notification committed on B at a steady 1,000 events/s, p50/p99, Redis and TLS
 *   - fan-out of public events to 1, 4 and 16 peers over TLS
 * Nodes run with the shipped defaults (trust rate limits, frame sizes, in-flight window).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AssembledNode, assembleNode } from '../src/daemon/assemble.js';
import { loadOrCreateIdentity } from '../src/identity/index.js';
import type { KnownPeer } from '../src/mesh/index.js';
import { MemoryNetwork, memoryProvider, type ProviderFactory, redisProvider, tlsProvider } from '../src/transport/index.js';
import { freePort, TestRedis } from '../test/helpers/redis.js';
import { type BenchSection, fmt, percentile } from './harness.js';

type Kind = 'memory' | 'redis' | 'tls';

async function mesh(kind: Kind, receivers: number, redisUrl: string | undefined): Promise<{ a: AssembledNode; rs: AssembledNode[]; close: () => Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), `weft-bench-mesh-${kind}-`));
  const names = ['a', ...Array.from({ length: receivers }, (_, i) => `r${i}`)];
  const info = await Promise.all(
    names.map(async (n) => {
      mkdirSync(join(root, n), { recursive: true });
      return { n, nodeId: loadOrCreateIdentity(join(root, n, 'identity.key')).identity.nodeId, port: await freePort() };
    }),
  );
  const net = new MemoryNetwork();
  const nodes: AssembledNode[] = [];
  for (const me of info) {
    // the sender knows every receiver; a receiver knows the sender
    const others = me.n === 'a' ? info.filter((o) => o.n !== 'a') : info.filter((o) => o.n === 'a');
    const peers: KnownPeer[] = others.map((o) => ({ computer: o.n, cluster: 'bench', nodeId: o.nodeId, trustLevel: 'peer', origin: 'static' }));
    let provider: ProviderFactory;
    if (kind === 'memory') provider = memoryProvider({ network: net, computer: me.n });
    else if (kind === 'redis') provider = redisProvider({ url: redisUrl as string, computer: me.n });
    else provider = tlsProvider({ computer: me.n, port: me.port, peers: others.map((o) => ({ computer: o.n, nodeId: o.nodeId, host: '127.0.0.1', port: o.port })), credits: 512 });
    nodes.push(
      await assembleNode({
        dataDir: join(root, me.n),
        computer: me.n,
        cluster: 'bench',
        // The shipped defaults: trust rate limits on, 64 frames in flight, 256 envelopes a frame.
        mesh: { provider, peers },
      }),
    );
  }
  for (const n of nodes) await n.start();
  return {
    a: nodes[0] as AssembledNode,
    rs: nodes.slice(1),
    close: async () => {
      for (const n of nodes) await n.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function counter(rs: AssembledNode[]): { total: () => number; lat: number[] } {
  let total = 0;
  const lat: number[] = [];
  for (const r of rs) {
    r.node.onCommitted((b) => {
      const now = Date.now();
      for (const e of b.passed) {
        if (e.event !== 'mesh.test.ping') continue;
        total++;
        lat.push(now - Number(e.payload.n));
      }
    });
  }
  return { total: () => total, lat };
}

async function waitUntil(fn: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

async function throughput(kind: Kind, receivers: number, events: number, redisUrl?: string): Promise<number> {
  const m = await mesh(kind, receivers, redisUrl);
  try {
    const c = counter(m.rs);
    const t0 = performance.now();
    for (let i = 0; i < events; i += 500) {
      await m.a.node.emitMany(
        Array.from({ length: Math.min(500, events - i) }, () => ({ event: 'mesh.test.ping', visibility: 'public', payload: { n: Date.now() } })),
      );
    }
    const ok = await waitUntil(() => c.total() >= events * receivers, 120_000);
    const secs = (performance.now() - t0) / 1000;
    return ok ? (events * receivers) / secs : Number.NaN;
  } finally {
    await m.close();
  }
}

async function latency(kind: Kind, redisUrl?: string, count = 3000): Promise<{ p50: number; p99: number }> {
  const m = await mesh(kind, 1, redisUrl);
  try {
    const c = counter(m.rs);
    // Warm up: the link is up and the first frame went through before the clock starts.
    await m.a.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: Date.now() } });
    await waitUntil(() => c.total() >= 1, 30_000);
    c.lat.length = 0;
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const wait = t0 + i - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      void m.a.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: Date.now() } });
    }
    await waitUntil(() => c.lat.length >= count, 30_000);
    const lat = c.lat.sort((x, y) => x - y);
    return { p50: percentile(lat, 50), p99: percentile(lat, 99) };
  } finally {
    await m.close();
  }
}

export default async function meshBench(): Promise<BenchSection> {
  const redis = await TestRedis.start();
  try {
    // 8,000: one producer's burst stays inside the shipped per-source allowance (bursts of
    // 10,000, then 2,000/s); a bigger burst from one source is throttled by the trust stage by
    // design, and the figure would measure that instead of the mesh.
    const n = Number(process.env.WEFT_BENCH_MESH_EVENTS ?? 8_000);
    const tp: Record<Kind, number> = {
      memory: await throughput('memory', 1, n),
      redis: await throughput('redis', 1, n, redis.url),
      tls: await throughput('tls', 1, n),
    };
    const lat = { redis: await latency('redis', redis.url), tls: await latency('tls') };
    const fan: Record<string, number> = {};
    for (const k of [1, 4, 16]) fan[k] = await throughput('tls', k, Math.max(1000, Math.floor(8000 / k)));
    const rows = [
      ...(['memory', 'redis', 'tls'] as Kind[]).map((k) => ({ measure: `A → B over ${k}, whole pipeline both ends`, value: `${fmt(tp[k])} events/s` })),
      { measure: 'emit on A → notification on B at 1,000/s, Redis', value: `p50 ${fmt(lat.redis.p50, 1)} ms, p99 ${fmt(lat.redis.p99, 1)} ms` },
      { measure: 'emit on A → notification on B at 1,000/s, TLS', value: `p50 ${fmt(lat.tls.p50, 1)} ms, p99 ${fmt(lat.tls.p99, 1)} ms` },
      ...[1, 4, 16].map((k) => ({ measure: `public fan-out over TLS to ${k} peer${k > 1 ? 's' : ''}`, value: `${fmt(fan[k] as number)} deliveries/s` })),
    ];
    return {
      title: 'Mesh: whole nodes A → B (one process, 2 cores shared by every node)',
      rows,
      results: { events: n, throughput: tp, latencyMs: lat, fanOutDeliveriesPerSec: fan },
    };
  } finally {
    await redis.stop();
  }
}
