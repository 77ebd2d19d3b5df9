/**
 * A key rotation between two nodes that found each other through the Redis peer registry (the
 * daemon's own path: `weft identity rotate` while it runs). The peer follows the endorsed
 * rotation and keeps the new key: the rotating node's registry entry names the new key at once,
 * and an entry still naming the old key (stale, or written back by someone) is ignored. Before,
 * the entry kept the old key until a restart, the peer took it back from the registry within
 * seconds, and every frame signed with the new key was refused as FRAME_UNKNOWN_SENDER: the
 * link stalled until the rotating node restarted.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { type AssembledNode, assembleNode } from '../../src/daemon/assemble.js';
import { rotateIdentityFile } from '../../src/identity/index.js';
import { redisProvider } from '../../src/transport/index.js';
import { waitFor } from '../helpers/node.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const pings = (n: AssembledNode) =>
  n.node.ns.notifications
    .list({ eventType: 'mesh.test.ping', limit: 100 })
    .items.map((x) => `${x.payload.note}`)
    .sort();

test('redis registry: after a key rotation while running, the peer keeps the new key (the registry names it; an old-key entry is ignored) and events keep flowing', async () => {
  const redis = await TestRedis.start();
  const t = tempDir('weft-rotreg-');
  const nodes: Record<string, AssembledNode> = {};
  const raw = new Redis(redis.port, '127.0.0.1');
  try {
    for (const c of ['one', 'two']) {
      mkdirSync(join(t.dir, c), { recursive: true });
      nodes[c] = await assembleNode({
        dataDir: join(t.dir, c),
        computer: c,
        cluster: 'home',
        mesh: {
          provider: redisProvider({ url: redis.url, computer: c }),
          registryUrl: redis.url,
          options: { discoverEveryMs: 200, resendAfterMs: 500 },
        },
      });
    }
    const one = nodes.one as AssembledNode;
    const two = nodes.two as AssembledNode;
    for (const n of [one, two]) await n.start();
    await waitFor(
      () => two.peers.byName('one') !== undefined && one.peers.byName('two') !== undefined,
      10_000,
      'found each other in the registry',
    );
    await one.node.emit({
      event: 'mesh.test.ping',
      visibility: 'cluster',
      payload: { n: 1, note: 'old-key' },
    });
    await waitFor(() => pings(two).length === 1, 20_000, 'first event');
    const oldEntry = await raw.get('weft:peers:one');
    assert.ok(oldEntry?.includes(one.identity.nodeId));

    // What the daemon's rotate route does.
    const r = rotateIdentityFile(join(t.dir, 'one', 'identity.key'), one.node.clock);
    await one.mesh?.rotate(r.identity, r.record);
    one.node.setNodeId(r.identity.nodeId);
    one.identity = r.identity;
    assert.match(
      (await raw.get('weft:peers:one')) ?? '',
      new RegExp(r.identity.nodeId.replace(/[+/]/g, '\\$&')),
      'the registry names the new key at once',
    );
    await waitFor(
      () => two.peers.byName('one')?.nodeId === r.identity.nodeId,
      10_000,
      'rotation applied on two',
    );
    // Several discovery rounds later it still holds the new key.
    await new Promise((res) => setTimeout(res, 1000));
    assert.equal(two.peers.byName('one')?.nodeId, r.identity.nodeId, 'the registry took the old key back');
    // Two followed the endorsed rotation, unless its discovery read the registry's new entry
    // before the rotation frame arrived (a race the registry can win: the frame, signed with the
    // old key, is then refused and the old key is not marked as rotated away from).
    const followed = two.audit
      .entries()
      .some((e) => e.kind === 'key.rotated' && e.peer === 'one' && e.success);
    if (followed) {
      // An entry naming the old key (stale, or written back by whoever can write the registry) changes nothing.
      await raw.set('weft:peers:one', oldEntry as string, 'PX', 15_000);
      await new Promise((res) => setTimeout(res, 1000));
      assert.equal(
        two.peers.byName('one')?.nodeId,
        r.identity.nodeId,
        'an old-key registry entry reverted the rotation',
      );
    }

    await one.node.emit({
      event: 'mesh.test.ping',
      visibility: 'cluster',
      payload: { n: 2, note: 'new-key' },
    });
    await waitFor(() => pings(two).length === 2, 20_000, 'the event signed with the new key');
    assert.deepEqual(pings(two), ['new-key', 'old-key']);
    // When two followed the rotation, nothing was refused. (When the registry won the race, the
    // rotation frame and other frames still signed with the old key were refused; their events came
    // again under the new key, as the arrival above shows.)
    const refused = two.mesh?.counters.rejected.FRAME_UNKNOWN_SENDER ?? 0;
    if (followed) assert.equal(refused, 0, 'frames signed with the new key were refused');
  } finally {
    raw.disconnect();
    for (const n of Object.values(nodes)) await n.stop();
    await redis.stop();
    t.cleanup();
  }
});
