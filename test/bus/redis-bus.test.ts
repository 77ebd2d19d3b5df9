import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { streamEntries } from '../../src/bus/redis-bus.js';
import { runScript } from '../../src/redis/index.js';
import type { Cartridge } from '../../src/pipeline/index.js';
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

test("a type's payload filter (the privacy layer's secrets filter) runs on what a program XADDs too, before it is logged", async () => {
  const stream = 'weft:foreign-filtered';
  const { node, close } = await startTestNode({ redis: { url: redis.url, stream } });
  const todo = 'domain.software-development.planning.todo.created';
  node.catalog.setPayloadFilter(todo, (p) => ({ ...p, title: String(p.title).replace(/hunter2/g, '[REDACTED:test]') }));
  const r = new Redis(redis.url);
  try {
    await r.xadd(stream, '*', 'event', todo, 'source', 'python-producer', 'timestamp', '2026-11-25T08:00:00Z', 'level', '2', 'payload', JSON.stringify({ slug: 'f-1', title: 'pw hunter2' }));
    await waitFor(() => node.ns.notifications.list({ eventType: todo }).items.length === 1, 10_000, 'the entry processed');
    assert.equal(node.ns.notifications.list({ eventType: todo }).items[0]?.payload.title, 'pw [REDACTED:test]');
    const body = node.ns.store.reader.prepare('SELECT body FROM events WHERE event = ?').pluck().get(todo) as string;
    assert.doesNotMatch(body, /hunter2/, 'the log holds the filtered payload');
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

const TODO = 'domain.software-development.planning.todo.created';
const rowsOf = (node: { ns: { store: { reader: { prepare(sql: string): { all(): unknown[] } } } } }) =>
  node.ns.store.reader.prepare('SELECT envelope_id AS id, applied FROM emit_journal ORDER BY seq').all() as Array<{ id: string; applied: number }>;

test('an emit while the pipeline is caught up is applied in the commit that accepts it, then goes on the stream for its other readers', async () => {
  const stream = 'weft:direct';
  const { node, close } = await startTestNode({ redis: { url: redis.url, stream } });
  const r = new Redis(redis.url);
  try {
    // Another program reads the node's stream with a group of its own.
    await r.xgroup('CREATE', stream, 'other-reader', '0', 'MKSTREAM');
    assert.ok(await node.idle(), 'the pipeline is caught up');
    const env = await node.emit({ event: TODO, payload: { slug: 'd-1', title: 'direct' } });
    // Applied when the emit answers: no round trip through Redis first.
    assert.equal(node.ns.notifications.list({ eventType: TODO }).items.length, 1, 'applied when the emit resolved');
    assert.equal(node.processor.stats.processed, 1);
    // ... and on the stream afterwards, with the mark and its id, for the other reader.
    const read = async () => {
      return streamEntries(await r.call('XREADGROUP', 'GROUP', 'other-reader', 'c', 'COUNT', 10, 'STREAMS', stream, '>')) as Array<[string, string[]]>;
    };
    let seen: Array<[string, string[]]> = [];
    for (let i = 0; i < 400 && seen.length === 0; i++) {
      seen = await read();
      if (seen.length === 0) await new Promise((res) => setTimeout(res, 25));
    }
    assert.equal(seen.length, 1, 'the other reader gets the event');
    const fields = seen[0]?.[1] ?? [];
    assert.equal(fields[fields.indexOf('id') + 1], env.id);
    assert.equal(fields[fields.indexOf('weft') + 1], '1');
    // Its journal row goes once it is on the stream; the pipeline skips the copy it reads back
    // and acknowledges it in its own group, without applying it again.
    await waitFor(() => rowsOf(node).length === 0, 10_000, 'the journal row removed once on the stream');
    await waitFor(() => (node.bus.stats().skippedCopies ?? 0) === 1, 10_000, 'the copy read back and skipped');
    const pending = (await r.call('XPENDING', stream, 'weft:pipeline:test')) as [number, ...unknown[]];
    assert.equal(pending[0], 0, 'nothing left pending in the node group');
    assert.equal(node.processor.stats.processed, 1, 'applied once');
    assert.equal(node.ns.notifications.list({ eventType: TODO }).items.length, 1);
  } finally {
    r.disconnect();
    await close();
  }
});

test('with Redis away an emit is still applied at once; it goes on the stream when Redis is back', async () => {
  const own = await TestRedis.start();
  const stream = 'weft:away';
  const { node, close } = await startTestNode({ redis: { url: own.url, stream } });
  const r = new Redis(own.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    assert.ok(await node.idle());
    await own.kill();
    const env = await node.emit({ event: TODO, payload: { slug: 'away-1', title: 'while Redis is away' } });
    assert.equal(node.ns.notifications.list({ eventType: TODO }).items.length, 1, 'applied without Redis');
    assert.deepEqual(rowsOf(node), [{ id: env.id, applied: 1 }], 'its row waits to go on the stream, as applied');
    assert.equal(node.bus.stats().unsent, 1);
    assert.equal(node.bus.pending(), 0, 'nothing waits for the pipeline');
    await own.restart();
    await r.connect();
    await waitFor(() => rowsOf(node).length === 0, 20_000, 'the row sent once Redis is back');
    const entries = await r.xrange(stream, '-', '+');
    assert.deepEqual(entries.map(([, f]) => f[f.indexOf('id') + 1]), [env.id], 'on the stream once');
    await waitFor(() => (node.bus.stats().skippedCopies ?? 0) === 1, 20_000, 'the copy skipped');
    assert.equal(node.processor.stats.processed, 1, 'applied once');
  } finally {
    r.disconnect();
    await close();
    await own.stop();
  }
});

test('an emit does not pass events of this node that wait for the pipeline', async () => {
  const own = await TestRedis.start();
  const stream = 'weft:order';
  const { node, close } = await startTestNode({ redis: { url: own.url, stream } });
  try {
    assert.ok(await node.idle());
    await own.kill();
    // Journaled through the bus (as an emit is when it cannot be applied at once): it waits for Redis.
    const first = node.build({ event: TODO, payload: { slug: 'o-1', title: 'first' } });
    await node.bus.append([first]);
    const second = await node.emit({ event: TODO, payload: { slug: 'o-2', title: 'second' } });
    assert.equal(node.ns.notifications.list({ eventType: TODO }).items.length, 0, 'the later emit waits behind the earlier one');
    assert.deepEqual(rowsOf(node), [{ id: first.id, applied: 0 }, { id: second.id, applied: 0 }]);
    await own.restart();
    await waitFor(() => node.ns.notifications.list({ eventType: TODO }).items.length === 2, 20_000, 'both applied once Redis is back');
    const order = node.ns.store.reader.prepare('SELECT id FROM events WHERE event = ? ORDER BY seq').pluck().all(TODO);
    assert.deepEqual(order, [first.id, second.id], 'applied in the order they were accepted');
    assert.ok(await node.idle());
    assert.deepEqual(rowsOf(node), []);
  } finally {
    await close();
    await own.stop();
  }
});

test("an emit behind a cartridge's event on its way through the stream waits for it, then is applied at once after it", async () => {
  const READY = 'domain.software-development.planning.todo.ready';
  const spawner: Cartridge = {
    name: 'spawner',
    process(e, ctx) {
      if (e.event === TODO && e.payload.slug === 'parent') ctx.emit({ event: READY, payload: { slug: 'child' } });
      return e;
    },
  };
  const stream = 'weft:behind';
  const { node, close } = await startTestNode({ redis: { url: redis.url, stream }, cartridges: (d) => [d.dedup, spawner, d.projection] });
  try {
    assert.ok(await node.idle());
    const parent = await node.emit({ event: TODO, payload: { slug: 'parent', title: 'p' } });
    // The child is journaled, waiting for the pipeline, and goes round through Redis.
    const child = node.ns.log.children(parent.id);
    assert.equal(child.length, 0, 'the child is not applied with its parent');
    const next = await node.emit({ event: TODO, payload: { slug: 'next', title: 'n' } });
    const order = node.ns.store.reader.prepare("SELECT id FROM events WHERE event LIKE 'domain.software-development.planning.todo.%' ORDER BY seq").pluck().all();
    assert.equal(order.length, 3, 'when the later emit answers, the child and it are applied');
    assert.deepEqual([order[0], order[2]], [parent.id, next.id], 'the child before the later emit');
    assert.equal(node.ns.log.children(parent.id)[0]?.envelope.event, READY);
    // The later emit took the direct path: its journal row is an applied one (or gone once on the stream).
    assert.ok(rowsOf(node).every((r) => r.id !== next.id || r.applied === 1));
  } finally {
    await close();
  }
});

test('add-own moves the node group past its applied entries only while the group had read everything before them', async () => {
  const r = new Redis(redis.url);
  const stream = 'weft:add-own';
  const add = (entries: Array<[boolean, string]>) => {
    const args: Array<string | number> = ['g'];
    for (const [applied, n] of entries) args.push(applied ? '1' : '0', 4, 'weft', '1', 'n', n);
    return runScript(r, 'add-own', [stream], args).then(Number);
  };
  const readG = async () => streamEntries(await r.call('XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', 100, 'STREAMS', stream, '>')).map(([, f]) => (f as string[])[3]);
  try {
    // No stream, no group: the entries are added, nothing is moved.
    assert.equal(await add([[true, 'a0']]), 0);
    await r.xgroup('CREATE', stream, 'g', '$');
    await r.xgroup('CREATE', stream, 'other', '0');
    // The group has read everything: moved past applied entries, up to the first that is not.
    assert.equal(await add([[true, 'a1'], [true, 'a2'], [false, 'w3'], [true, 'a4']]), 2);
    assert.deepEqual(await readG(), ['w3', 'a4'], 'the group reads from the first entry not applied');
    // Another program's entry the group has not read yet: nothing is moved past it.
    await r.xadd(stream, '*', 'event', 'x.y', 'n', 'foreign');
    assert.equal(await add([[true, 'a5']]), 0);
    assert.deepEqual(await readG(), ['foreign', 'a5']);
    // Caught up again: moved; nothing pending for it in the group.
    assert.equal(await add([[true, 'a6']]), 1);
    assert.deepEqual(await readG(), []);
    const pending = (await r.call('XPENDING', stream, 'g')) as [number, ...unknown[]];
    assert.equal(pending[0], 4, 'what it read is pending (w3, a4, foreign, a5), not what it was moved past');
    // Every other group reads every entry.
    const other = streamEntries(await r.call('XREADGROUP', 'GROUP', 'other', 'c', 'COUNT', 100, 'STREAMS', stream, '>')).map(([, f]) => (f as string[])[3]);
    assert.deepEqual(other, ['a0', 'a1', 'a2', 'w3', 'a4', 'foreign', 'a5', 'a6']);
  } finally {
    r.disconnect();
  }
});
