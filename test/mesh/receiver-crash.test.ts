/**
 * kill -9 of a receiving daemon while 10,000 frames (one event each) are in flight over Redis,
 * then a restart: every frame's event is applied exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { WeftClient } from '../../src/client/index.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

let redis: TestRedis;
const t = tempDir('weft-rcrash-');
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis.stop();
  t.cleanup();
});

async function count(api: WeftClient): Promise<{ total: number; distinct: number }> {
  const seen: number[] = [];
  let cursor: number | undefined;
  for (;;) {
    const page = await api.notifications.list({
      type: 'mesh.test.ping',
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    });
    for (const n of page.items) seen.push(n.payload.n as number);
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return { total: seen.length, distinct: new Set(seen).size };
}

// The shipped defaults (256 envelopes per frame, 64 frames in flight: a kill lands inside a
// multi-envelope frame), and one envelope per frame with 20,000 in flight (a kill between frames).
const SETUPS = [
  { name: 'with the defaults', env: {} },
  {
    name: 'one event per frame, 20,000 frames in flight',
    env: { WEFT_MESH_FRAME_ENVELOPES: '1', WEFT_MESH_MAX_INFLIGHT_FRAMES: '20000' },
  },
];

for (const setup of SETUPS)
  test(`kill -9 of the receiver with 10,000 events in flight over Redis, ${setup.name}: each applied exactly once`, async () => {
    const { nodes, stopAll } = await startCluster(
      `${t.dir}/${SETUPS.indexOf(setup)}`,
      [
        { computer: 'sender', cluster: 'c' },
        { computer: 'receiver', cluster: 'c' },
      ],
      { provider: 'redis', redisUrl: redis.url, extraEnv: setup.env },
    );
    const s = nodes.sender as ClusterNode;
    const r = nodes.receiver as ClusterNode;
    try {
      await eventually(
        async () => (await s.api.request<unknown[]>('GET', '/api/peers')).length === 1,
        20_000,
        'discovery',
      );
      const N = 10_000;
      for (let i = 0; i < N; i += 1000) {
        await s.api.emitMany(
          Array.from({ length: 1000 }, (_, k) => ({
            event: 'mesh.test.ping',
            visibility: 'cluster',
            payload: { n: i + k },
          })),
        );
      }
      let atKill = 0;
      await eventually(
        async () => {
          atKill = (await count(r.api)).total;
          return atKill >= 300;
        },
        60_000,
        'the receiver applying frames',
      );
      await r.kill();
      assert.ok(atKill < N, `killed mid-stream (${atKill} of ${N} applied)`);
      await r.start();
      await eventually(async () => (await count(r.api)).total >= N, 120_000, `all ${N} on the receiver`);
      const c = await count(r.api);
      assert.equal(c.total, N, 'no event applied twice');
      assert.equal(c.distinct, N, 'no event lost');
    } finally {
      await stopAll();
    }
  });
