/**
 * A burst of big events used to make one frame over the 4 MiB limit and stop a peer link for
 * good (surviving restarts, with `mesh status` still saying connected). Frames are now cut by
 * their encoded size; an envelope no frame can carry is dead-lettered and raised.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { assembleNode } from '../../src/daemon/assemble.js';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import { MemoryNetwork, memoryProvider } from '../../src/transport/index.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/node.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

for (const provider of ['tls', 'redis'] as const) {
  test(`over ${provider}: 100 cluster events of ~60 KB each reach the peer, and the link keeps carrying what follows`, async () => {
    const t = tempDir(`weft-big-${provider}-`);
    const redis = provider === 'redis' ? await TestRedis.start() : undefined;
    const c = await startCluster(t.dir, [{ computer: 'a', cluster: 'home' }, { computer: 'b', cluster: 'home' }], { provider, ...(redis ? { redisUrl: redis.url } : {}) });
    try {
      const a = c.nodes.a as ClusterNode;
      const b = c.nodes.b as ClusterNode;
      if (redis) await eventually(async () => (await a.api.request<unknown[]>('GET', '/api/peers')).length === 1, 20_000, 'discovery');
      const big = 'x'.repeat(60_000);
      // One emit call: all 100 land in one outbox read, i.e. what used to become one 6 MB frame.
      await a.api.emitMany(Array.from({ length: 100 }, (_, n) => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n, note: big.slice(0, 900) + n, blob: big } })));
      for (let n = 100; n < 110; n++) await a.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n, note: 'after' } });
      const count = async () => (await b.api.notifications.list({ type: 'mesh.test.ping', limit: 1000 })).items.length;
      await eventually(async () => (await count()) === 110, 60_000, 'all 110 events on b');
      const status = await a.api.request<{ peers: Array<{ computer: string; state: string; outbox: number }> }>('GET', '/api/mesh/status');
      const peer = status.peers.find((p) => p.computer === 'b');
      assert.notEqual(peer?.state, 'stalled');
      await eventually(
        async () => (await a.api.request<{ peers: Array<{ computer: string; outbox: number }> }>('GET', '/api/mesh/status')).peers.find((p) => p.computer === 'b')?.outbox === 0,
        20_000,
        "a's outbox for b drained",
      );
    } finally {
      await c.stopAll();
      await redis?.stop();
      t.cleanup();
    }
  });
}

test('an envelope too large for any frame is dead-lettered and raised, and the events after it flow', async () => {
  const t = tempDir('weft-undeliverable-');
  const net = new MemoryNetwork();
  const specs = ['a', 'b'];
  const ids = Object.fromEntries(
    specs.map((c) => {
      mkdirSync(join(t.dir, c), { recursive: true });
      return [c, loadOrCreateIdentity(join(t.dir, c, 'identity.key')).identity.nodeId];
    }),
  );
  const nodes = await Promise.all(
    specs.map((c) =>
      assembleNode({
        dataDir: join(t.dir, c),
        computer: c,
        cluster: 'home',
        mesh: {
          provider: memoryProvider({ network: net, computer: c }),
          peers: specs.filter((o) => o !== c).map((o) => ({ computer: o, cluster: 'home', nodeId: ids[o] as string, trustLevel: 'peer' as const, origin: 'static' as const })),
          // A small frame limit stands for a link that cannot carry what the node accepts.
          options: { maxFrameBytes: 32 * 1024 },
        },
      }),
    ),
  );
  const [a, b] = nodes as [Awaited<ReturnType<typeof assembleNode>>, Awaited<ReturnType<typeof assembleNode>>];
  try {
    for (const n of nodes) await n.start();
    await a.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'too-big', blob: 'z'.repeat(40_000) } });
    await a.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'small' } });
    await waitFor(() => b.node.ns.notifications.list({ eventType: 'mesh.test.ping' }).items.some((x) => x.payload.note === 'small'), 15_000, 'the small event on b');
    await waitFor(() => a.node.ns.notifications.list({ eventType: 'mesh.event.undeliverable' }).items.length === 1, 15_000, 'the undeliverable notification');
    const n = a.node.ns.notifications.list({ eventType: 'mesh.event.undeliverable' }).items[0];
    assert.equal(n?.payload.peer, 'b');
    assert.equal(n?.payload.limit, 32 * 1024);
    assert.ok(Number(n?.payload.bytes) > 32 * 1024);
    assert.equal(a.node.ns.deadLetters.list()[0]?.cartridge, 'mesh-sender:b');
    assert.equal(b.node.ns.notifications.list({ eventType: 'mesh.test.ping' }).items.filter((x) => x.payload.note === 'too-big').length, 0);
    await waitFor(() => a.mesh?.outbox.depth('b') === 0, 15_000, 'the outbox for b to drain: nothing is left to block the link');
  } finally {
    for (const n of nodes) await n.stop();
    t.cleanup();
  }
});

test('a link that cannot progress shows as stalled, with the reason', async () => {
  const t = tempDir('weft-stalled-');
  const net = new MemoryNetwork();
  mkdirSync(join(t.dir, 'a'), { recursive: true });
  const ghost = loadOrCreateIdentity(join(t.dir, 'ghost.key')).identity.nodeId;
  const a = await assembleNode({
    dataDir: join(t.dir, 'a'),
    computer: 'a',
    cluster: 'home',
    mesh: {
      provider: memoryProvider({ network: net, computer: 'a' }),
      // 'ghost' is configured but never joins the network: every send to it fails.
      peers: [{ computer: 'ghost', cluster: 'home', nodeId: ghost, trustLevel: 'peer', origin: 'static' }],
      options: { stallAfterMs: 300 },
    },
  });
  try {
    await a.start();
    await a.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1 } });
    const mesh = a.mesh;
    assert.ok(mesh);
    const peer = () => (mesh.status().peers as Array<{ computer: string; state: string; stalledReason: string | null }>).find((p) => p.computer === 'ghost');
    await waitFor(() => peer()?.state === 'stalled', 15_000, 'the ghost link to show stalled');
    assert.ok(peer()?.stalledReason, 'with a reason');
  } finally {
    await a.stop();
    t.cleanup();
  }
});
