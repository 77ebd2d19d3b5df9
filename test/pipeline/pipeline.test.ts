import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Cartridge, CartridgeFactory, CartridgeStores } from '../../src/pipeline/index.js';
import { startTestNode } from '../helpers/node.js';

const TODO = 'domain.software-development.planning.todo';

test('re-emitting an event with the same idempotency key yields one notification', async () => {
  const { node, close } = await startTestNode();
  try {
    const input = { event: `${TODO}.created`, payload: { slug: 'same', title: 'Once' } };
    await node.emit(input);
    await node.emit(input);
    await node.emitMany([input, input]);
    assert.ok(await node.idle());
    assert.equal(node.ns.notifications.count(), 1);
    assert.equal(node.processor.stats.dropped, 3);
  } finally {
    await close();
  }
});

test('lifecycle: created, updated by group (meaningful change resets unseen), resolved', async () => {
  const { node, close } = await startTestNode();
  try {
    await node.emit({ event: `${TODO}.created`, payload: { slug: 'lc', title: 'Lifecycle' } });
    await node.idle();
    const [n] = node.ns.notifications.list().items;
    assert.ok(n);
    assert.equal(n.humanStatus, 'unseen');
    await node.ns.notifications.markSeen(n.id);

    // same score and verdict would be a duplicate; a new score is a meaningful update
    await node.emit({ event: `${TODO}.dor_assessed`, payload: { slug: 'lc', score: 4, verdict: 'needs_work' } });
    await node.idle();
    let cur = node.ns.notifications.get(n.id);
    assert.equal(node.ns.notifications.count(), 1, 'grouped into the same notification');
    assert.equal(cur.humanStatus, 'unseen', 'meaningful change makes it unseen again');
    assert.equal(cur.payload.score, 4);
    assert.equal(cur.payload.title, 'Lifecycle', 'payload merged');

    await node.ns.notifications.markSeen(n.id);
    // `ready` declares only slug as meaningful: unchanged, so it stays seen
    await node.emit({ event: `${TODO}.ready`, payload: { slug: 'lc', readyBy: 'bot' } });
    await node.idle();
    cur = node.ns.notifications.get(n.id);
    assert.equal(cur.humanStatus, 'seen', 'a silent update does not reset');
    assert.equal(cur.payload.readyBy, 'bot');

    await node.emit({ event: `${TODO}.closed`, payload: { slug: 'lc', reason: 'delivered' } });
    await node.idle();
    cur = node.ns.notifications.get(n.id);
    assert.equal(cur.agentStatus, 'resolved');
    assert.deepEqual(cur.resolution, { slug: 'lc', reason: 'delivered' });

    // after resolution a new todo with the same slug opens a new notification
    await node.emit({ event: `${TODO}.dor_assessed`, payload: { slug: 'lc', score: 9, verdict: 'ready' } });
    await node.idle();
    assert.equal(node.ns.notifications.count(), 2);
  } finally {
    await close();
  }
});

test('a cartridge that throws dead-letters the event, emits system.cartridge.failed, and the next events flow', async () => {
  // A factory given the node's stores, as a stateful cartridge is.
  const boom: CartridgeFactory<Pick<CartridgeStores, 'notifications'>> = ({ notifications }) => ({
    name: 'boom',
    process(e, ctx) {
      if (e.payload.slug === 'bad') {
        notifications.createFromEvent(e, ctx.catalog.require(e.event), ctx.now); // partial write, must roll back
        throw new Error('kaboom');
      }
      return e;
    },
  });
  const { node, close } = await startTestNode({ cartridges: (d, stores) => [d.dedup, boom(stores), d.projection] });
  try {
    await node.emit({ event: `${TODO}.created`, payload: { slug: 'bad', title: 'Bad' } });
    await node.emit({ event: `${TODO}.created`, payload: { slug: 'good', title: 'Good' } });
    await node.idle();
    const dl = node.ns.deadLetters.list();
    assert.equal(dl.length, 1);
    assert.equal(dl[0]?.cartridge, 'boom');
    assert.equal(dl[0]?.error, 'kaboom');
    const items = node.ns.notifications.list().items;
    const types = items.map((n) => `${n.eventType}:${String(n.payload.slug ?? n.payload.cartridge)}`).sort();
    assert.deepEqual(types, [`${TODO}.created:good`, 'system.cartridge.failed:boom']);
    const failed = items.find((n) => n.eventType === 'system.cartridge.failed');
    assert.equal(failed?.payload.eventId, dl[0]?.eventId);
    // lineage: the failure event is caused by the failed event
    const failedEvent = node.ns.log.get(failed?.eventId ?? '');
    assert.equal(failedEvent?.envelope.causationId, dl[0]?.eventId);
    assert.equal(node.processor.stats.failed, 1);
  } finally {
    await close();
  }
});

test('invocations are counted per cartridge in cartridge_stats', async () => {
  const { node, close } = await startTestNode();
  try {
    await node.emitMany(Array.from({ length: 25 }, (_, i) => ({ event: `${TODO}.created`, payload: { slug: `s${i}`, title: 't' } })));
    await node.idle();
    const stats = Object.fromEntries(node.ns.stats.list().map((s) => [s.cartridgeName, s.invocationCount]));
    assert.equal(stats.dedup, 25);
    assert.equal(stats['notification-projection'], 25);
  } finally {
    await close();
  }
});

test('events emitted by a cartridge carry causation and correlation ids', async () => {
  const spawner: Cartridge = {
    name: 'spawner',
    process(e, ctx) {
      if (e.event.endsWith('.created')) ctx.emit({ event: `${TODO}.ready`, payload: { slug: e.payload.slug as string } });
      return e;
    },
  };
  const { node, close } = await startTestNode({ cartridges: (d) => [d.dedup, spawner, d.projection] });
  try {
    const root = await node.emit({ event: `${TODO}.created`, payload: { slug: 'tree', title: 'T' } });
    await node.idle();
    const kids = node.ns.log.children(root.id);
    assert.equal(kids.length, 1);
    assert.equal(kids[0]?.envelope.correlationId, root.id);
    assert.equal(kids[0]?.envelope.event, `${TODO}.ready`);
  } finally {
    await close();
  }
});
