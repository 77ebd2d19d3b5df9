/**
 * Another program's data on the same Redis survives a running mesh. TeleClaude's command
 * entries (its `send_system_command` / `send_request` shapes) are written to TeleClaude's own
 * inbox, to Weft's inbox and to Weft's bus stream next to two daemons that run with the
 * defaults and trade events; after two minutes (two trim rounds at the default 60 s) every
 * one of them is still there and none was acknowledged, while Weft's own entries were trimmed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

let redis: TestRedis;
let nodes: Record<string, ClusterNode>;
let stopAll: () => Promise<void>;
const t = tempDir('weft-foreign-');
before(async () => {
  redis = await TestRedis.start();
  const c = await startCluster(t.dir, [{ computer: 'a', cluster: 'home', env: { WEFT_MESH_TELECLAUDE_PEERS: 'mozart/home' } }, { computer: 'b', cluster: 'home' }], {
    provider: 'redis',
    redisUrl: redis.url,
  });
  nodes = c.nodes;
  stopAll = c.stopAll;
});
after(async () => {
  await stopAll?.();
  await redis.stop();
  t.cleanup();
});

/** Entries on a stream that carry Weft's mark (only those of one event type, when given). */
async function marked(r: Redis, stream: string, event?: string): Promise<number> {
  return (await r.xrange(stream, '-', '+')).filter(([, f]) => f[0] === 'weft' && (event === undefined || f.some((v, i) => i % 2 === 0 && v === 'event' && f[i + 1] === event))).length;
}

test("TeleClaude's entries beside a running mesh are all still there, unacknowledged, after 2 minutes", { timeout: 240_000 }, async () => {
  const a = nodes.a as ClusterNode;
  const b = nodes.b as ClusterNode;
  const r = new Redis(redis.url);
  try {
    await eventually(async () => (await a.api.request<unknown[]>('GET', '/api/peers')).length === 2, 20_000, 'a knows b (and mozart)');
    const streams = ['messages:a', 'weft:messages:a', 'weft:messages:b', 'weft:events:a', 'weft:events:b'];
    const written = new Map<string, string[]>();
    for (const s of streams) {
      written.set(s, [
        (await r.xadd(s, '*', 'type', 'system', 'command', 'health_check', 'timestamp', '1736944200.1', 'from_computer', 'mozart', 'origin', 'redis')) as string,
        (await r.xadd(s, '*', 'command', 'list_sessions', 'timestamp', '1736944200.2', 'initiator', 'mozart', 'origin', 'redis', 'args', '{"all": true}')) as string,
      ]);
    }
    // Traffic both ways for two minutes, so both inboxes and both buses have Weft entries to trim.
    const deadline = Date.now() + 125_000;
    let n = 0;
    let peakInboxB = 0;
    while (Date.now() < deadline) {
      await a.api.emitMany(Array.from({ length: 20 }, () => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: n++, note: 'traffic' } })));
      await b.api.emitMany(Array.from({ length: 20 }, () => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: n++, note: 'traffic' } })));
      peakInboxB = Math.max(peakInboxB, await marked(r, 'weft:messages:b'));
      await new Promise((res) => setTimeout(res, 5000));
    }

    for (const [s, ids] of written) {
      const present = new Set((await r.xrange(s, '-', '+')).map(([id]) => id));
      for (const id of ids) assert.ok(present.has(id), `${id} is still on ${s}`);
      const groups = (await r.call('XINFO', 'GROUPS', s)) as unknown[][];
      if (s === 'messages:a') assert.equal(groups.length, 0, 'no consumer group was made on TeleClaude\'s inbox');
      for (const g of groups) {
        const name = String(g[1]);
        for (const id of ids) {
          const pending = (await r.call('XPENDING', s, name, id, id, 1)) as unknown[];
          assert.equal(pending.length, 1, `${id} on ${s} is still pending (unacknowledged) in ${name}`);
        }
      }
    }
    // Meanwhile Weft's own entries were trimmed: the check above is not passing because nothing runs.
    await eventually(async () => (await b.api.notifications.list({ type: 'mesh.test.ping', limit: 1 })).items.length > 0, 10_000, 'traffic arrived');
    assert.ok(peakInboxB > 0, 'frames went through b\'s inbox');
    // Pings against pings: the node's own other events (its recovery journal, with the defaults) pass its bus too.
    const busA = await marked(r, 'weft:events:a', 'mesh.test.ping');
    const emittedByA = (await a.api.request<{ items: unknown[] }>('GET', '/api/events?type=mesh.test.ping&limit=1000')).items.length;
    assert.ok(busA < emittedByA, `a's bus was trimmed (${busA} of its ${emittedByA}+ ping entries left)`);
  } finally {
    r.disconnect();
  }
});
