/**
 * Three real daemons (alpha and beta in cluster `home`, gamma in `work`) as child processes,
 * linked once over Redis and once over TLS.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { WeftClient } from '../../src/client/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import { encodeFrame, tlsProvider } from '../../src/transport/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { systemClock } from '../../src/util/clock.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const SPECS = [
  { computer: 'alpha', cluster: 'home' },
  { computer: 'beta', cluster: 'home' },
  { computer: 'gamma', cluster: 'work' },
];

async function pings(api: WeftClient, note?: string): Promise<number[]> {
  const out: number[] = [];
  let cursor: number | undefined;
  for (;;) {
    const page = await api.notifications.list({ type: 'mesh.test.ping', limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const n of page.items) if (note === undefined || n.payload.note === note) out.push(n.payload.n as number);
    if (!page.nextCursor) return out.sort((a, b) => a - b);
    cursor = page.nextCursor;
  }
}

async function rejections(api: WeftClient): Promise<Array<{ code: string; senderComputer: string }>> {
  const page = await api.notifications.list({ type: 'mesh.event.rejected', limit: 100 });
  return page.items.map((n) => n.payload as { code: string; senderComputer: string });
}

async function eventsIn(api: WeftClient): Promise<number> {
  const s = await api.request<{ counters: { eventsIn: number } }>('GET', '/api/mesh/status');
  return s.counters.eventsIn;
}

/** The types of the events a node logged as having come over the mesh (hops > 0). */
async function received(api: WeftClient): Promise<string[]> {
  const out: string[] = [];
  let cursor: number | undefined;
  for (;;) {
    const page = await api.events.list({ limit: 500, ...(cursor ? { cursor } : {}) });
    for (const i of page.items) if ((i.envelope.hops ?? 0) > 0) out.push(i.envelope.event);
    if (!page.nextCursor) return out;
    cursor = page.nextCursor;
  }
}

for (const provider of ['redis', 'tls'] as const) {
  describe(`mesh over ${provider}`, () => {
    let redis: TestRedis;
    let nodes: Record<string, ClusterNode>;
    let stopAll: () => Promise<void>;
    const t = tempDir(`weft-multi-${provider}-`);
    before(async () => {
      redis = await TestRedis.start();
      const c = await startCluster(t.dir, SPECS, { provider, redisUrl: redis.url });
      nodes = c.nodes;
      stopAll = c.stopAll;
    });
    after(async () => {
      await stopAll?.();
      await redis.stop();
      t.cleanup();
    });

    test('local reaches no peer, cluster exactly the cluster, public every peer, nobody its own', async () => {
      const a = nodes.alpha as ClusterNode;
      const b = nodes.beta as ClusterNode;
      const g = nodes.gamma as ClusterNode;
      if (provider === 'redis') {
        // discovery through the registry: wait until alpha knows both peers
        await eventually(async () => (await a.api.request<unknown[]>('GET', '/api/peers')).length === 2, 20_000, 'discovery');
      }
      await a.api.emit({ event: 'mesh.test.ping', visibility: 'local', payload: { n: 1, note: 'vis' } });
      await a.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'vis' } });
      await a.api.emit({ event: 'mesh.test.ping', visibility: 'public', payload: { n: 3, note: 'vis' } });
      await g.api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 4, note: 'vis' } });
      await eventually(async () => (await pings(b.api, 'vis')).length === 2 && (await pings(g.api, 'vis')).length === 2, 30_000, 'delivery');
      assert.deepEqual(await pings(a.api, 'vis'), [1, 2, 3]);
      assert.deepEqual(await pings(b.api, 'vis'), [2, 3]);
      assert.deepEqual(await pings(g.api, 'vis'), [3, 4], "gamma's cluster event stayed in its own cluster (it has no cluster peer)");
      // alpha hears beta's own traffic (its recovery beacons and journals, with the defaults), but
      // nothing of its own: one of its events coming back would be counted in and never logged (a
      // duplicate id), so every event counted in must be one it logged as a peer's, and none a ping.
      await eventually(async () => (await eventsIn(a.api)) === (await received(a.api)).length, 10_000, "alpha's events in to match what it logged from peers");
      assert.deepEqual((await received(a.api)).filter((e) => e === 'mesh.test.ping'), [], 'alpha never received its own events (nor gamma\'s)');
    });

    test('an event from an unknown node is rejected with mesh.event.rejected and audited', async () => {
      const b = nodes.beta as ClusterNode;
      const stranger = generateIdentity();
      if (provider === 'redis') {
        const r = new Redis(redis.url);
        const frame = encodeFrame(
          { type: 'events', sequence: 1, timestamp: Date.now(), body: { envelopes: [{ id: 'x', event: 'mesh.test.ping' }] } },
          { identity: stranger },
        );
        await r.xadd('weft:messages:beta', '*', 'weft', '1', 'type', 'mesh_event', 'from', 'stranger', 'payload', Buffer.from(frame));
        r.disconnect();
        await eventually(async () => (await rejections(b.api)).some((x) => x.code === 'FRAME_UNKNOWN_SENDER'), 20_000, 'rejection');
      } else {
        const betaPort = Number(/@127\.0\.0\.1:(\d+)#/.exec(String((nodes.alpha as ClusterNode).env.WEFT_MESH_PEERS).split(',').find((s) => s.startsWith('beta')) ?? '')?.[1]);
        const p = tlsProvider({ computer: 'stranger', peers: [{ computer: 'beta', nodeId: b.nodeId, host: '127.0.0.1', port: betaPort }], reconnect: { minMs: 50, maxMs: 200 } })({
          logger: silentLogger,
          clock: systemClock,
          identity: stranger,
        });
        await p.start();
        try {
          await eventually(async () => (await rejections(b.api)).some((x) => x.code === 'PEER_UNKNOWN_KEY'), 20_000, 'refusal');
        } finally {
          await p.stop();
        }
      }
      const audit = await b.api.text('/api/audit/export');
      assert.match(audit, provider === 'redis' ? /"kind":"frame\.rejected".*FRAME_UNKNOWN_SENDER/ : /"kind":"peer\.refused".*PEER_UNKNOWN_KEY/);
      const v = await b.api.request<{ ok: boolean }>('GET', '/api/audit/verify');
      assert.equal(v.ok, true);
      // beta keeps serving its known peers meanwhile
      await (nodes.alpha as ClusterNode).api.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 99, note: 'after-stranger' } });
      await eventually(async () => (await pings(b.api, 'after-stranger')).length === 1, 20_000, 'known peer still served');
    });

    test('a peer stopped while 5,000 cluster events are emitted gets every one exactly once', async () => {
      const a = nodes.alpha as ClusterNode;
      const b = nodes.beta as ClusterNode;
      assert.equal(await b.stop(), 0);
      const N = 5000;
      for (let i = 0; i < N; i += 500) {
        await a.api.emitMany(Array.from({ length: 500 }, (_, k) => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: i + k, note: 'outage' } })));
        if (provider === 'redis' && i === 2500) {
          await redis.restart(); // Redis keeps nothing: the inbox and registry come back empty
        }
      }
      await b.start();
      await eventually(async () => (await pings(b.api, 'outage')).length >= N, 90_000, `all ${N} events on beta`);
      const got = await pings(b.api, 'outage');
      assert.equal(got.length, N, 'no duplicates');
      assert.equal(new Set(got).size, N);
      assert.equal(got[0], 0);
      assert.equal(got[N - 1], N - 1);
      await eventually(
        async () => ((await a.api.request<{ peers: Array<{ computer: string; outbox: number }> }>('GET', '/api/mesh/status')).peers.find((p) => p.computer === 'beta')?.outbox ?? 1) === 0,
        30_000,
        "alpha's outbox for beta drained",
      );
      // gamma (other cluster) got none of them
      assert.equal((await pings((nodes.gamma as ClusterNode).api, 'outage')).length, 0);
    });

    test('weft mesh send shows as a notification on the other node', async () => {
      const a = nodes.alpha as ClusterNode;
      const g = nodes.gamma as ClusterNode;
      await a.api.request('POST', '/api/mesh/send', { computer: 'gamma', text: 'hello from alpha' });
      await eventually(async () => (await g.api.notifications.list({ type: 'mesh.message.received' })).items.some((n) => n.payload.text === 'hello from alpha'), 20_000, 'message');
    });
  });
}
