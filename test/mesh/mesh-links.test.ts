import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AssembledNode, assembleNode } from '../../src/daemon/assemble.js';
import { createRotationRecord, generateIdentity, loadOrCreateIdentity } from '../../src/identity/index.js';
import type { KnownPeer } from '../../src/mesh/index.js';
import { encodeFrame, MemoryNetwork, type MountCaps, memoryProvider, type TransportCap } from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { waitFor } from '../helpers/node.js';
import { tempDir } from '../helpers/tmp.js';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';

const NODES = [
  { computer: 'alpha', cluster: 'home' },
  { computer: 'beta', cluster: 'home' },
  { computer: 'gamma', cluster: 'work' },
];

async function threeNodes(): Promise<{ nodes: Record<string, AssembledNode>; cleanup: () => Promise<void> }> {
  const t = tempDir('weft-mesh-');
  const net = new MemoryNetwork();
  // identities first, so every node can pin every other one
  const ids = Object.fromEntries(
    NODES.map((n) => {
      const dir = join(t.dir, n.computer);
      mkdirSync(dir, { recursive: true });
      return [n.computer, loadOrCreateIdentity(join(dir, 'identity.key')).identity.nodeId];
    }),
  );
  const nodes: Record<string, AssembledNode> = {};
  for (const n of NODES) {
    const peers: KnownPeer[] = NODES.filter((p) => p.computer !== n.computer).map((p) => ({
      computer: p.computer,
      cluster: p.cluster,
      nodeId: ids[p.computer] as string,
      trustLevel: 'peer',
      origin: 'static',
    }));
    nodes[n.computer] = await assembleNode({
      dataDir: join(t.dir, n.computer),
      computer: n.computer,
      cluster: n.cluster,
      mesh: { provider: memoryProvider({ network: net, computer: n.computer }), peers, options: { resendAfterMs: 500 } },
    });
  }
  for (const n of Object.values(nodes)) await n.start();
  return {
    nodes,
    cleanup: async () => {
      for (const n of Object.values(nodes)) await n.stop();
      t.cleanup();
    },
  };
}

const pings = (n: AssembledNode) =>
  n.node.ns.notifications
    .list({ eventType: 'mesh.test.ping', limit: 1000 })
    .items.map((x) => `${x.payload.note}`)
    .sort();

test('visibility routes events: local stays, cluster reaches the cluster, public reaches everyone, never self', async () => {
  const { nodes, cleanup } = await threeNodes();
  try {
    const a = nodes.alpha as AssembledNode;
    await a.node.emit({ event: 'mesh.test.ping', visibility: 'local', payload: { n: 1, note: 'local' } });
    await a.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'cluster' } });
    await a.node.emit({ event: 'mesh.test.ping', visibility: 'public', payload: { n: 3, note: 'public' } });
    await a.node.emit({ event: 'telemetry.shell.command', visibility: 'public', payload: { command: 'rm -rf /secret' } });
    await waitFor(() => pings(nodes.beta as AssembledNode).length === 2 && pings(nodes.gamma as AssembledNode).length === 1, 10_000, 'delivery');
    assert.deepEqual(pings(a), ['cluster', 'local', 'public']);
    assert.deepEqual(pings(nodes.beta as AssembledNode), ['cluster', 'public']);
    assert.deepEqual(pings(nodes.gamma as AssembledNode), ['public']);
    // provenance is stamped by the receiver from the verified sender
    const got = (nodes.gamma as AssembledNode).node.ns.notifications.list({ eventType: 'mesh.test.ping' }).items[0];
    assert.equal(got?.sourceComputer, 'alpha');
    // raw-class data never left alpha
    for (const c of ['beta', 'gamma']) {
      const n = nodes[c] as AssembledNode;
      assert.equal(n.node.ns.store.reader.prepare(`SELECT COUNT(*) FROM events WHERE event = 'telemetry.shell.command'`).pluck().get(), 0);
    }
    // every outbox drains once the peers acknowledge
    await waitFor(() => Object.keys(a.mesh?.outbox.depths() ?? { x: 1 }).length === 0, 10_000, 'outbox drained');
    // nothing came back to alpha: it received none of its own events
    assert.equal(a.mesh?.counters.eventsIn, 0);
  } finally {
    await cleanup();
  }
});

async function pair(opts: { aCaps?: MountCaps; providerCaps?: TransportCap[] } = {}) {
  const t = tempDir('weft-pair-');
  const net = new MemoryNetwork();
  const spec = ['one', 'two'];
  const ids = Object.fromEntries(
    spec.map((c) => {
      mkdirSync(join(t.dir, c), { recursive: true });
      return [c, loadOrCreateIdentity(join(t.dir, c, 'identity.key')).identity.nodeId];
    }),
  );
  const nodes: Record<string, AssembledNode> = {};
  for (const c of spec) {
    const other = spec.find((x) => x !== c) as string;
    nodes[c] = await assembleNode({
      dataDir: join(t.dir, c),
      computer: c,
      cluster: 'pair',
      mesh: {
        provider: memoryProvider({ network: net, computer: c, ...(opts.providerCaps ? { caps: opts.providerCaps } : {}) }),
        peers: [{ computer: other, cluster: 'pair', nodeId: ids[other] as string, trustLevel: 'peer', origin: 'static' }],
        options: { resendAfterMs: 300, ...(c === 'one' && opts.aCaps ? { caps: opts.aCaps } : {}) },
      },
    });
  }
  for (const n of Object.values(nodes)) await n.start();
  return {
    one: nodes.one as AssembledNode,
    two: nodes.two as AssembledNode,
    net,
    cleanup: async () => {
      for (const n of Object.values(nodes)) await n.stop();
      t.cleanup();
    },
  };
}

test('a required cap no provider offers means no link (transport.noprov) and the outbox keeps the events', async () => {
  const p = await pair({ aCaps: { required: ['deflate'] }, providerCaps: ['crc32c', 'reliable', 'ordered'] });
  try {
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'caps' } });
    await waitFor(() => p.one.node.ns.notifications.list({ eventType: 'transport.noprov' }).items.length === 1, 10_000, 'noprov');
    const st = p.one.mesh?.status() as { peers: Array<{ negotiatedCaps: unknown; outbox: number }> };
    assert.equal(st.peers[0]?.negotiatedCaps, 'noprov');
    await waitFor(() => (p.one.mesh?.outbox.depth('two') ?? 0) === 1, 5_000, 'outbox keeps it');
    assert.equal(p.two.node.ns.notifications.list({ eventType: 'mesh.test.ping' }).items.length, 0);
  } finally {
    await p.cleanup();
  }
});

test('a missing preferred cap downgrades with transport.flatneg, and the link works', async () => {
  const p = await pair({ aCaps: { preferred: ['crc32c', 'deflate'] }, providerCaps: ['crc32c', 'reliable', 'ordered'] });
  try {
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'flat' } });
    await waitFor(() => p.two.node.ns.notifications.list({ eventType: 'mesh.test.ping' }).items.length === 1, 10_000, 'delivery');
    const ev = p.one.node.ns.log.list({ type: 'transport.flatneg' });
    assert.equal(ev.length, 1);
    assert.deepEqual(ev[0]?.envelope.payload, { peer: 'two', missing: ['deflate'] });
    const st = p.one.mesh?.status() as { peers: Array<{ negotiatedCaps: unknown }> };
    assert.deepEqual(st.peers[0]?.negotiatedCaps, ['crc32c']);
  } finally {
    await p.cleanup();
  }
});

test('key rotation: the peer accepts the new key only with the old key\'s endorsement, then refuses the old key', async () => {
  const p = await pair();
  try {
    const before = p.one.identity;
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'old-key' } });
    await waitFor(() => p.two.node.ns.notifications.list({ eventType: 'mesh.test.ping' }).items.length === 1, 10_000, 'first');
    const next = generateIdentity();
    const record = createRotationRecord(before, next, Date.now());
    await p.one.mesh?.rotate(next, record);
    p.one.node.setNodeId(next.nodeId);
    await waitFor(() => p.two.peers.byName('one')?.nodeId === next.nodeId, 10_000, 'rotation applied');
    await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'new-key' } });
    await waitFor(() => p.two.node.ns.notifications.list({ eventType: 'mesh.test.ping' }).items.length === 2, 10_000, 'second');
    // a frame still signed by the old key is refused now
    const stale = encodeFrame(
      { type: 'events', sequence: 999_999, timestamp: Date.now(), body: { envelopes: [] } },
      { identity: before },
    );
    await memorySend(p.net, 'one', 'two', stale);
    await waitFor(() => (p.two.mesh?.counters.rejected.FRAME_UNKNOWN_SENDER ?? 0) === 1, 10_000, 'old key refused');
    // a rotation record not endorsed by the pinned key changes nothing
    const forged = createRotationRecord(generateIdentity(), generateIdentity(), Date.now());
    const bad = encodeFrame({ type: 'key-rotation', sequence: 1_000_000, timestamp: Date.now(), body: { record: forged } }, { identity: next });
    await memorySend(p.net, 'one', 'two', bad);
    await waitFor(() => [...p.two.audit.exportJsonLines()].some((l) => l.includes('"kind":"key.rotated"') && l.includes('"success":false')), 10_000, 'forged rotation audited');
    assert.equal(p.two.peers.byName('one')?.nodeId, next.nodeId);
  } finally {
    await p.cleanup();
  }
});

/** Puts raw bytes into a node's memory inbox, as a peer (or an attacker on the link) would. */
async function memorySend(net: MemoryNetwork, from: string, to: string, bytes: Uint8Array): Promise<void> {
  const prov = memoryProvider({ network: net, computer: `${from}-raw` })({ logger: silentLogger, clock: systemClock });
  await prov.start();
  await prov.send(to, bytes);
  await prov.stop();
}
