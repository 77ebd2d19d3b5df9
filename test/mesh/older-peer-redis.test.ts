/**
 * A rolling upgrade on a shared Redis: the upgraded node's peer still runs a Weft from before
 * link keys (2026-12-04 and earlier). Such a node never sends a hello, sends its frames unsealed
 * and cannot open sealed ones. It is played here by a raw Redis link holding its key (old
 * commits are not built in tests): it reads its own inbox and puts signed, unsealed frames on
 * the upgraded node's, as that build did.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { assembleNode } from '../../src/daemon/assemble.js';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import { decodeFrame, encodeFrame, redisProvider } from '../../src/transport/index.js';
import { silentLogger, systemClock } from '../../src/util/index.js';
import { waitFor } from '../helpers/node.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';


/** A private Redis, the identities of an upgraded node ('fresh') and of an old one, the upgraded node with the old one as its static peer, and the old one's raw link. */
async function upgradedBesideOld(prefix: string) {
  const t = tempDir(prefix);
  const redis = await TestRedis.start();
  for (const c of ['fresh', 'old']) mkdirSync(join(t.dir, c), { recursive: true });
  const oldId = loadOrCreateIdentity(join(t.dir, 'old', 'identity.key')).identity;
  const freshId = loadOrCreateIdentity(join(t.dir, 'fresh', 'identity.key')).identity;
  const fresh = await assembleNode({
    dataDir: join(t.dir, 'fresh'),
    computer: 'fresh',
    cluster: 'home',
    mesh: {
      provider: redisProvider({ url: redis.url, computer: 'fresh' }),
      peers: [{ computer: 'old', cluster: 'home', nodeId: oldId.nodeId, trustLevel: 'peer', origin: 'static' }],
    },
  });
  // The old node's link: it reads its own inbox and puts frames on the upgraded node's, as that build did.
  const link = redisProvider({ url: redis.url, computer: 'old' })({ logger: silentLogger, clock: systemClock, identity: oldId });
  return { t, redis, oldId, freshId, fresh, link };
}

test('redis: a peer from before link keys gets the upgraded node\'s events and acks once it shows itself, never before', { timeout: 90_000 }, async () => {
  const { t, redis, oldId, freshId, fresh, link } = await upgradedBesideOld('weft-older-redis-');
  // The old node's envelopes, built as it would build them (its key, its name); no mesh of its own.
  const oldNode = await assembleNode({ dataDir: join(t.dir, 'old'), computer: 'old', cluster: 'home' });
  const got = { pings: [] as string[], acks: 0, sealed: 0 };
  let resend: NodeJS.Timeout | undefined;
  try {
    await fresh.start();
    await link.start();
    void (async () => {
      for await (const f of link.frames()) {
        // Without the link key an old node could not open a sealed frame either.
        const d = decodeFrame(f.bytes, { lookupKey: () => freshId.publicKey });
        if (!d.ok) got.sealed++;
        else if (d.frame.type === 'events') {
          for (const e of (d.frame.body as { envelopes: Array<string | { payload: { note: string } }> }).envelopes) {
            got.pings.push((typeof e === 'string' ? (JSON.parse(e) as { payload: { note: string } }) : e).payload.note);
          }
        } else if (d.frame.type === 'ack') got.acks++;
        await f.ack();
      }
    })();
    for (const note of ['f1', 'f2']) await fresh.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note } });
    const peerState = () => ((fresh.mesh?.status().peers as Array<{ computer: string; state: string; encryption: string | null }>) ?? []).find((p) => p.computer === 'old');
    await waitFor(() => peerState()?.state === 'keying', 20_000, 'the link to the old node to wait for its key');
    // Nothing in plaintext to a peer that has not shown it cannot seal.
    assert.deepEqual(got.pings, []);

    // The old node sends one of its own events, signed and unsealed.
    const env = oldNode.node.build({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'o1' } });
    let oldSeq = 1;
    const o1 = () => encodeFrame({ type: 'events', sequence: oldSeq++, timestamp: Date.now(), body: { envelopes: [env] } }, { identity: oldId, crc32c: true });
    await link.send('fresh', o1());
    // As that build did: what is not acknowledged goes again, in a new frame, until it is.
    resend = setInterval(() => {
      if (got.acks === 0) void link.send('fresh', o1()).catch(() => undefined);
    }, 2000);
    await waitFor(() => fresh.node.ns.notifications.list({ eventType: 'mesh.test.ping', limit: 10 }).items.some((n) => n.payload.note === 'o1'), 20_000, 'the old node\'s event on the upgraded one');
    // Before: the link stayed 'keying' for good: nothing reached the old node, and without an ack
    // it sent its frames again and again.
    // (The upgraded node waits 10 s for a hello first: a current peer's frames may come before it.)
    await waitFor(() => got.pings.length >= 2 && got.acks > 0, 40_000, `the upgraded node's events and an ack on the old node (have ${JSON.stringify(got)})`);
    assert.deepEqual([...got.pings].sort(), ['f1', 'f2']);
    assert.equal(peerState()?.encryption, 'none');
  } finally {
    clearInterval(resend);
    await link.stop();
    await fresh.stop();
    await oldNode.stop();
    await redis.stop();
    t.cleanup();
  }
});

test('redis: a quiet peer from before link keys (it has nothing to send) still gets the upgraded node\'s events', { timeout: 90_000 }, async () => {
  const { t, redis, oldId, freshId, fresh, link } = await upgradedBesideOld('weft-older-redis-quiet-');
  const pings: string[] = [];
  let seq = 0;
  try {
    await fresh.start();
    await link.start();
    // As c124b10 did: every events frame it can open is acknowledged (signed, unsealed), an empty one too.
    void (async () => {
      for await (const f of link.frames()) {
        const d = decodeFrame(f.bytes, { lookupKey: () => freshId.publicKey });
        if (d.ok && d.frame.type === 'events') {
          const envs = (d.frame.body as { envelopes: Array<string | { id: string; payload: { note: string } }> }).envelopes.map((e) => (typeof e === 'string' ? (JSON.parse(e) as { id: string; payload: { note: string } }) : e));
          for (const e of envs) pings.push(e.payload.note);
          const ack = encodeFrame({ type: 'ack', sequence: ++seq, timestamp: Date.now(), body: { sequences: [d.frame.header.sequence], envelopeIds: envs.map((e) => e.id) } }, { identity: oldId, crc32c: true });
          await link.send('fresh', ack);
        }
        await f.ack();
      }
    })();
    for (const note of ['q1', 'q2']) await fresh.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note } });
    // Before: 'keying' for good, the outbox kept both until the old node happened to send something.
    await waitFor(() => pings.length >= 2, 40_000, `the upgraded node's events on the quiet old node (have ${JSON.stringify(pings)})`);
    assert.deepEqual([...pings].sort(), ['q1', 'q2']);
    await waitFor(() => fresh.node.ns.store.reader.prepare('SELECT COUNT(*) FROM mesh_outbox').pluck().get() === 0, 20_000, 'the outbox to drain on the old node\'s acks');
  } finally {
    await link.stop();
    await fresh.stop();
    await redis.stop();
    t.cleanup();
  }
});

test('redis: when the old peer is upgraded both ends seal again, and its unsealed frames of that moment are not taken for its choice', { timeout: 120_000 }, async () => {
  const { t, redis, oldId, freshId, fresh, link } = await upgradedBesideOld('weft-older-redis-upgraded-');
  const builder = await assembleNode({ dataDir: join(t.dir, 'old'), computer: 'old', cluster: 'home' });
  let upgraded: Awaited<ReturnType<typeof assembleNode>> | undefined;
  const peer = (n: Awaited<ReturnType<typeof assembleNode>>, name: string) =>
    ((n.mesh?.status().peers as Array<{ computer: string; encryption: string | null }>) ?? []).find((p) => p.computer === name);
  const notes = (n: Awaited<ReturnType<typeof assembleNode>>) => n.node.ns.notifications.list({ eventType: 'mesh.test.ping', limit: 50 }).items.map((x) => String(x.payload.note));
  try {
    await fresh.start();
    await link.start();
    const got: string[] = [];
    const reading = (async () => {
      for await (const f of link.frames()) {
        const d = decodeFrame(f.bytes, { lookupKey: () => freshId.publicKey });
        if (d.ok && d.frame.type === 'events') got.push(String(d.frame.header.sequence));
        await f.ack();
      }
    })();
    // The old node shows what it is: the link to it goes unsealed.
    const env = builder.node.build({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'o1' } });
    await link.send('fresh', encodeFrame({ type: 'events', sequence: 1, timestamp: Date.now(), body: { envelopes: [env] } }, { identity: oldId, crc32c: true }));
    await waitFor(() => peer(fresh, 'old')?.encryption === 'none', 20_000, 'the link to the old node to go unsealed');
    await link.stop();
    await reading;
    await builder.stop();
    // While it is being upgraded, the upgraded node's events wait for it in its inbox, unsealed.
    await fresh.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'during' } });
    await waitFor(() => fresh.node.ns.store.reader.prepare('SELECT COUNT(*) FROM mesh_outbox').pluck().get() === 1 && got.length >= 0, 5_000, 'the event in the outbox');
    await new Promise((r) => setTimeout(r, 500));
    upgraded = await assembleNode({
      dataDir: join(t.dir, 'old'),
      computer: 'old',
      cluster: 'home',
      mesh: {
        provider: redisProvider({ url: redis.url, computer: 'old' }),
        peers: [{ computer: 'fresh', cluster: 'home', nodeId: freshId.nodeId, trustLevel: 'peer', origin: 'static' }],
      },
    });
    await upgraded.start();
    const up = upgraded;
    await waitFor(() => notes(up).includes('during'), 30_000, 'the event on the upgraded node');
    // A sealed event each way, after everything sent before (each inbox is read in order).
    await up.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'sealed' } });
    await waitFor(() => notes(fresh).includes('sealed'), 30_000, 'the upgraded node\'s sealed event');
    await fresh.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'back' } });
    await waitFor(() => notes(up).includes('back'), 30_000, 'a sealed event back');
    // Before: 'aead-outbound-only' on a side that had taken the other's unsealed frames of the
    // moment for its configuration, until a restart (with advice to change that configuration).
    assert.deepEqual([peer(fresh, 'old')?.encryption, peer(up, 'fresh')?.encryption], ['aead', 'aead']);
  } finally {
    await link.stop().catch(() => undefined);
    await upgraded?.stop();
    await fresh.stop();
    await redis.stop();
    t.cleanup();
  }
});
