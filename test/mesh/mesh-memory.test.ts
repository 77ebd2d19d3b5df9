import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AssembledNode, assembleNode } from '../../src/daemon/assemble.js';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import type { KnownPeer } from '../../src/mesh/index.js';
import { MemoryNetwork, memoryProvider } from '../../src/transport/index.js';
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
