import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AssembledNode, assembleNode } from '../../src/daemon/assemble.js';
import { createRotationRecord, generateIdentity, loadOrCreateIdentity } from '../../src/identity/index.js';
import type { KnownPeer } from '../../src/mesh/index.js';
import { decodeFrame, encodeFrame, frameTypeHint, MemoryNetwork, memoryProvider } from '../../src/transport/index.js';
import { meshPair, TRANSPORTS } from '../helpers/mesh-pair.js';
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

const pingsOn = (n: AssembledNode) => n.node.ns.notifications.list({ eventType: 'mesh.test.ping', limit: 1000 }).items;

const NO_AEAD = ['crc32c', 'deflate', 'reliable', 'ordered', 'durable'] as const;

for (const transport of TRANSPORTS) {
  test(`${transport}: a required cap the peer does not offer means no link (transport.noprov) and the outbox keeps the events`, async () => {
    // Two's provider cannot seal: its hello says so, and one, which requires aead, has no link.
    const p = await meshPair(transport, { oneMesh: { caps: { required: ['aead'] } }, capsOf: { two: [...NO_AEAD] } });
    try {
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'caps' } });
      await waitFor(() => p.one.node.ns.notifications.list({ eventType: 'transport.noprov' }).items.length === 1, 10_000, 'noprov');
      const st = p.one.mesh?.status() as { peers: Array<{ negotiatedCaps: unknown; outbox: number }> };
      assert.equal(st.peers[0]?.negotiatedCaps, 'noprov');
      await waitFor(() => (p.one.mesh?.outbox.depth('two') ?? 0) === 1, 5_000, 'outbox keeps it');
      assert.equal(pingsOn(p.two).length, 0);
    } finally {
      await p.cleanup();
    }
  });

  test(`${transport}: a preferred cap the peer lacks downgrades with transport.flatneg (aead: only where the channel does not encrypt), and the link works`, async () => {
    const p = await meshPair(transport, { oneMesh: { caps: { preferred: ['crc32c', 'deflate', 'aead'] } }, capsOf: { two: ['crc32c', 'reliable', 'ordered', 'durable'] } });
    try {
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'flat' } });
      await waitFor(() => pingsOn(p.two).length === 1, 20_000, 'delivery');
      await waitFor(() => p.one.node.ns.log.list({ type: 'transport.flatneg' }).length > 0, 10_000, 'flatneg');
      const ev = p.one.node.ns.log.list({ type: 'transport.flatneg' });
      // Over TLS (and in-process memory) the channel keeps frames private: a preferred aead is met by it.
      const confidential = transport !== 'redis';
      assert.deepEqual(ev.at(-1)?.envelope.payload, { peer: 'two', missing: confidential ? ['deflate'] : ['deflate', 'aead'] });
      // Two's hello (which may come after the first frame) adds json-envelopes.
      const status = () => p.one.mesh?.status() as { peers: Array<{ negotiatedCaps: unknown; encryption: unknown }> };
      await waitFor(() => JSON.stringify(status().peers[0]?.negotiatedCaps) === '["crc32c","json-envelopes"]', 10_000, 'caps after the hello');
      const st = status();
      assert.equal(st.peers[0]?.encryption, confidential ? transport : 'none');
    } finally {
      await p.cleanup();
    }
  });

  test(`${transport}: key rotation: the peer accepts the new key only with the old key's endorsement, then refuses the old key`, async () => {
    const p = await meshPair(transport);
    try {
      const before = p.one.identity;
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'old-key' } });
      await waitFor(() => pingsOn(p.two).length === 1, 20_000, 'first');
      const next = generateIdentity();
      const record = createRotationRecord(before, next, Date.now());
      await p.one.mesh?.rotate(next, record);
      p.one.node.setNodeId(next.nodeId);
      await waitFor(() => p.two.peers.byName('one')?.nodeId === next.nodeId, 10_000, 'rotation applied');
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'new-key' } });
      await waitFor(() => pingsOn(p.two).length === 2, 20_000, 'second');
      // A raw link as one (over TLS it presents the key the link was pinned with, the old one).
      const link = await p.rawLink('one', before);
      // a frame still signed by the old key is refused now
      const stale = encodeFrame({ type: 'events', sequence: 999_999, timestamp: Date.now(), body: { envelopes: [] } }, { identity: before });
      await link.send('two', stale);
      await waitFor(() => (p.two.mesh?.counters.rejected.FRAME_UNKNOWN_SENDER ?? 0) === 1, 10_000, 'old key refused');
      // a rotation record not endorsed by the pinned key changes nothing
      const forged = createRotationRecord(generateIdentity(), generateIdentity(), Date.now());
      const bad = encodeFrame({ type: 'key-rotation', sequence: 1_000_000, timestamp: Date.now(), body: { record: forged } }, { identity: next });
      await link.send('two', bad);
      await waitFor(() => [...p.two.audit.exportJsonLines()].some((l) => l.includes('"kind":"key.rotated"') && l.includes('"success":false')), 10_000, 'forged rotation audited');
      assert.equal(p.two.peers.byName('one')?.nodeId, next.nodeId);
    } finally {
      await p.cleanup();
    }
  });

  test(`${transport}: a raw-class event marked public never crosses, in any frame the sender handed to the transport`, async () => {
    const p = await meshPair(transport);
    try {
      const SECRET = 'rm -rf /home/me/secret-7f3a9c';
      await p.one.node.emit({ event: 'telemetry.shell.command', visibility: 'public', payload: { command: SECRET, cwd: '/home/me' } });
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'public', payload: { n: 1, note: 'after-raw' } });
      await waitFor(() => pingsOn(p.two).some((n) => n.payload.note === 'after-raw'), 20_000, 'the marker on two');
      await waitFor(() => Object.keys(p.one.mesh?.outbox.depths() ?? { x: 1 }).length === 0, 20_000, "one's outbox drained");
      // Before TLS encrypts them (and whatever the frame's compression): each frame decoded, body scanned.
      let frames = 0;
      for (const bytes of p.sent.one) {
        assert.equal(Buffer.from(bytes).includes(Buffer.from('secret-7f3a9c')), false);
        const d = decodeFrame(bytes, { lookupKey: () => p.ids.one.publicKey, aeadKey: () => p.one.mesh?.linkKey('two') });
        assert.ok(d.ok, 'one sends only frames that decode');
        frames++;
        assert.doesNotMatch(JSON.stringify(d.frame.body), /secret-7f3a9c/);
      }
      assert.ok(frames >= 1);
      assert.equal(p.two.node.ns.store.reader.prepare(`SELECT COUNT(*) FROM events WHERE event = 'telemetry.shell.command'`).pluck().get(), 0);
    } finally {
      await p.cleanup();
    }
  });
}

for (const transport of ['memory', 'tls'] as const) {
  test(`${transport}: events go as their JSON text once the peer's signed hello offered json-envelopes, as maps to a peer whose hello did not; both arrive whole`, async () => {
    const p = await meshPair(transport);
    try {
      // Unsealed here (the channel is confidential): the bytes handed to the transport show the form.
      const asText = (b: Uint8Array) => Buffer.from(b).includes(Buffer.from('"event":"mesh.test.ping"'));
      const eventsFrames = (list: Uint8Array[]) => list.filter((b) => frameTypeHint(b) === 'events');
      const capsOfTwo = () => (p.one.mesh?.status() as { peers: Array<{ negotiatedCaps: unknown }> } | undefined)?.peers[0]?.negotiatedCaps;
      await waitFor(() => Array.isArray(capsOfTwo()) && (capsOfTwo() as string[]).includes('json-envelopes'), 10_000, "two's hello offered json-envelopes");
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'as-text', deep: { list: [1, 'ü', null] } } });
      await waitFor(() => pingsOn(p.two).length === 1, 20_000, 'first delivery');
      const first = eventsFrames(p.sent.one);
      assert.ok(first.length >= 1 && first.every(asText), 'every events frame carried JSON text');
      assert.deepEqual(pingsOn(p.two)[0]?.payload, { n: 1, note: 'as-text', deep: { list: [1, 'ü', null] } });
      if (transport === 'tls') return; // over TLS the raw link would replace two's mesh
      // Two as an older node: its own signed hello, without the cap.
      const hello = p.sent.two
        .map((b) => decodeFrame(b, { lookupKey: () => p.ids.two.publicKey }))
        .find((d) => d.ok && d.frame.type === 'hello');
      assert.ok(hello?.ok && hello.frame.type === 'hello', 'two said hello');
      const { reply: _reply, ...body } = hello.frame.body;
      const link = await p.rawLink('two');
      try {
        const older = encodeFrame(
          { type: 'hello', sequence: await (p.two.mesh as NonNullable<AssembledNode['mesh']>).nextSequence(), timestamp: Date.now(), body: { ...body, caps: body.caps.filter((c) => c !== 'json-envelopes') } },
          { identity: p.ids.two },
        );
        await link.send('one', older);
        await waitFor(() => Array.isArray(capsOfTwo()) && !(capsOfTwo() as string[]).includes('json-envelopes'), 10_000, 'renegotiated without json-envelopes');
      } finally {
        await link.stop();
      }
      const before = p.sent.one.length;
      await p.one.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'as-map' } });
      await waitFor(() => pingsOn(p.two).length === 2, 20_000, 'second delivery');
      const later = eventsFrames(p.sent.one.slice(before));
      assert.ok(later.length >= 1 && !later.some(asText), 'events frames carried maps');
      assert.deepEqual(pingsOn(p.two).map((x) => x.payload.note).sort(), ['as-map', 'as-text']);
    } finally {
      await p.cleanup();
    }
  });
}
