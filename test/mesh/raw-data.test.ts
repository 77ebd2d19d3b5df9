/**
 * Raw-class data never leaves its node: checked on real daemons with the defaults, after the
 * outboxes drained, in every byte that crossed (every stream entry on the shared Redis) and in
 * what the peer stored, not only in the sender's tables.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

test('a raw-class event marked public never crosses to a peer, not even as bytes on the wire', async () => {
  const t = tempDir('weft-raw-');
  const redis = await TestRedis.start();
  const c = await startCluster(t.dir, [{ computer: 'a', cluster: 'home' }, { computer: 'b', cluster: 'home' }], { provider: 'redis', redisUrl: redis.url });
  const r = new Redis(redis.url);
  try {
    const a = c.nodes.a as ClusterNode;
    const b = c.nodes.b as ClusterNode;
    await eventually(async () => (await a.api.request<unknown[]>('GET', '/api/peers')).length === 1, 20_000, 'discovery');
    const SECRET = 'rm -rf /home/me/secret-7f3a9c';
    await a.api.emit({ event: 'telemetry.shell.command', visibility: 'public', payload: { command: SECRET, cwd: '/home/me' } });
    // Sent after it: once this is on b and a's outbox is empty, the raw event had every chance to cross.
    await a.api.emit({ event: 'mesh.test.ping', visibility: 'public', payload: { n: 1, note: 'after-raw' } });
    await eventually(async () => (await b.api.notifications.list({ type: 'mesh.test.ping' })).items.some((n) => n.payload.note === 'after-raw'), 20_000, 'the marker on b');
    // With the defaults a's recovery journal sends the states of its notifications to the cluster
    // too: once nothing waits in it and the outbox is empty, that path had its chance as well.
    await eventually(async () => (await a.api.request<{ journal: { pending: number } }>('GET', '/api/recovery/status')).journal.pending === 0, 20_000, "a's recovery journal to catch up");
    await eventually(
      async () => ((await a.api.request<{ peers: Array<{ computer: string; outbox: number }> }>('GET', '/api/mesh/status')).peers.find((p) => p.computer === 'b')?.outbox ?? 1) === 0,
      20_000,
      "a's outbox for b drained",
    );
    // Every entry of every stream on the shared Redis, as bytes.
    let cursor = '0';
    const needle = Buffer.from('secret-7f3a9c');
    let streams = 0;
    do {
      const [next, keys] = await r.scan(cursor, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        if ((await r.type(key)) !== 'stream') continue;
        streams++;
        for (const [, fields] of (await r.xrangeBuffer(key, '-', '+')) as Array<[Buffer, Buffer[]]>) {
          for (const f of fields) assert.equal(f.includes(needle), false, `the raw command crossed on ${key}`);
        }
      }
    } while (cursor !== '0');
    assert.ok(streams >= 2, 'the inboxes and bus streams were scanned');
    const bLog = JSON.stringify(await b.api.request('GET', '/api/events?limit=1000'));
    assert.doesNotMatch(bLog, /secret-7f3a9c/, "not in b's log");
    assert.equal((await b.api.notifications.list({ type: 'telemetry.shell.command' })).items.length, 0);
    // a kept it (raw data is for its own node).
    assert.match(JSON.stringify(await a.api.request('GET', '/api/events?type=telemetry.shell.command')), /secret-7f3a9c/);
  } finally {
    r.disconnect();
    await c.stopAll();
    await redis.stop();
    t.cleanup();
  }
});
