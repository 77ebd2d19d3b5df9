import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { startTestNode, waitFor } from '../helpers/node.js';
import { TestRedis } from '../helpers/redis.js';

let redis: TestRedis;
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis.stop();
});

test('a program that XADDs the seed format without our library is a producer', async () => {
  const stream = 'weft:foreign';
  const { node, close } = await startTestNode({ redis: { url: redis.url, stream } });
  const r = new Redis(redis.url);
  try {
    const good = await r.xadd(stream, '*',
      'event', 'domain.software-development.planning.todo.created', 'version', '1', 'source', 'python-producer',
      'timestamp', '2026-11-25T08:00:00.123456+00:00', 'idempotency_key', '', 'level', '2', 'domain', 'software-development',
      'entity', '', 'description', 'from redis-cli', 'visibility', 'local',
      'payload', JSON.stringify({ slug: 'py-1', title: 'From Python' }), 'actions', '', 'terminal_when', '', 'resolution_shape', '');
    // malformed: bad JSON payload, and an unknown level: both recorded as rejections, never a crash
    const badJson = await r.xadd(stream, '*', 'event', 'x.y', 'source', 's', 'timestamp', '2026-11-25T08:00:00Z', 'level', '1', 'payload', '{oops');
    const badLevel = await r.xadd(stream, '*', 'event', 'x.y', 'source', 's', 'timestamp', '2026-11-25T08:00:00Z', 'level', '7', 'payload', '{}');
    const todo = 'domain.software-development.planning.todo.created';
    await waitFor(() => node.ns.notifications.list({ eventType: todo }).items.length === 1 && node.processor.stats.rejected === 2, 10_000, 'foreign entry processed');
    const n = node.ns.notifications.list({ eventType: todo }).items[0];
    assert.equal(n?.source, 'python-producer');
    assert.equal(n?.description, 'from redis-cli');
    assert.equal(node.ns.rejections.count(), 2);
    assert.match(node.ns.rejections.list()[1]?.reason ?? '', /field 'payload' is not valid JSON/);
    assert.equal(node.ns.rejections.list()[1]?.field, 'payload');
    // the refusal is visible: a notification naming the field
    await waitFor(() => node.ns.notifications.list({ eventType: 'system.entry.rejected' }).items.length >= 1, 10_000, 'refusal notification');
    const refusal = node.ns.notifications.list({ eventType: 'system.entry.rejected' }).items.at(-1);
    assert.equal(refusal?.payload.field, 'payload');
    // the event is acknowledged after the commit; the refused entries stay, unacknowledged
    const pendingOf = async (id: string | null) => ((await r.call('XPENDING', stream, 'weft:pipeline:test', id as string, id as string, 1)) as unknown[]).length;
    assert.equal(await pendingOf(good), 0, 'the event is acknowledged');
    assert.equal(await pendingOf(badJson), 1, 'a refused entry is not');
    assert.equal(await pendingOf(badLevel), 1);
    const left = (await r.xrange(stream, '-', '+')).filter(([, f]) => !f.includes('weft')).length;
    assert.equal(left, 3, 'what the other program wrote is all still on the stream');
  } finally {
    r.disconnect();
    await close();
  }
});

test('after Redis restarts empty the bus recreates its group and keeps consuming', async () => {
  const stream = 'weft:restart';
  const { node, close } = await startTestNode({ redis: { url: redis.url, stream } });
  try {
    await node.emit({ event: 'domain.software-development.planning.todo.created', payload: { slug: 'before', title: 'b' } });
    await waitFor(() => node.ns.notifications.count() === 1);
    await redis.restart();
    let sent = false;
    for (let i = 0; i < 200 && !sent; i++) {
      try {
        await node.emit({ event: 'domain.software-development.planning.todo.created', payload: { slug: 'after', title: 'a' } });
        sent = true;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.ok(sent, 'emit succeeded after the restart');
    await waitFor(() => node.ns.notifications.count() === 2, 15_000, 'event after restart processed');
  } finally {
    await close();
  }
});
