import assert from 'node:assert/strict';
import { test } from 'node:test';
import { systemPipeline, trustEvaluator } from '../../src/cartridges/index.js';
import { BURST_DETECTED, TRUST_THROTTLED } from '../../src/catalog/index.js';
import { createNode } from '../../src/node/index.js';
import type { Cartridge, CartridgeFactory, CartridgeStores } from '../../src/pipeline/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { startTestNode } from '../helpers/node.js';
import { tempDir } from '../helpers/tmp.js';

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

/** Throws on events whose slug starts with 'bad', after a write of its own that must not stay. */
const boomOnBad: CartridgeFactory<Pick<CartridgeStores, 'notifications'>> = ({ notifications }) => ({
  name: 'boom',
  process(e, ctx) {
    if (String(e.payload.slug ?? '').startsWith('bad')) {
      notifications.createFromEvent(e, ctx.catalog.require(e.event), ctx.now);
      throw new Error(`kaboom ${String(e.payload.slug)}`);
    }
    return e;
  },
});

test('a cartridge throwing in a batch run without savepoints: the batch runs again with them, every other effect once, then savepoints for a while', async () => {
  // Emits a child for every new todo, before the stage that throws: the first run's children must not stay.
  const spawner: Cartridge = {
    name: 'spawner',
    process(e, ctx) {
      if (e.event === `${TODO}.created`) ctx.emit({ event: `${TODO}.ready`, payload: { slug: e.payload.slug as string } });
      return e;
    },
  };
  const clock = new ManualClock(Date.now());
  const t = tempDir('weft-rerun-');
  const node = await createNode(
    { dataDir: t.dir, computer: 'test', cartridges: (d, stores) => [d.dedup, spawner, boomOnBad(stores), d.projection] },
    { clock },
  );
  await node.start();
  try {
    assert.ok(node.pipeline.optimistic, 'no stage asks for a savepoint per event');
    // One emit, one batch: the bad event in the middle, after 25 events were applied in the first run.
    const slugs = Array.from({ length: 50 }, (_, i) => (i === 25 ? 'bad-1' : `s${i}`));
    await node.emitMany(slugs.map((slug) => ({ event: `${TODO}.created`, payload: { slug, title: slug } })));
    assert.ok(await node.idle());
    assert.equal(node.processor.stats.reruns, 1);
    assert.equal(node.processor.stats.failed, 1);
    const dl = node.ns.deadLetters.list();
    assert.deepEqual(dl.map((d) => [d.cartridge, d.error]), [['boom', 'kaboom bad-1']]);
    const created = node.ns.notifications.list({ limit: 200 }).items.filter((n) => n.eventType === `${TODO}.created`);
    assert.equal(created.length, 49, "the bad event's own write was rolled back; the others' are there once");
    assert.equal(new Set(created.map((n) => n.payload.slug)).size, 49);
    const ready = node.ns.log.list({ type: `${TODO}.ready`, limit: 500 });
    assert.equal(ready.length, 49, 'children of the first run are gone: one per good event');
    assert.equal(node.ns.log.list({ type: 'system.cartridge.failed', limit: 10 }).length, 1);
    // Invocation counts of the first run were dropped with it: boom ran once on every logged event but the bad one.
    const logged = node.ns.log.list({ limit: 1000 }).length;
    const stats = Object.fromEntries(node.ns.stats.list().map((s) => [s.cartridgeName, s.invocationCount]));
    assert.equal(stats.boom, logged - 1);
    assert.equal(stats.dedup, logged);

    // Within the next minute batches keep a savepoint per event: a failure costs no second run.
    clock.advance(30_000);
    await node.emitMany([{ event: `${TODO}.created`, payload: { slug: 'bad-2', title: 'x' } }, { event: `${TODO}.created`, payload: { slug: 'ok-2', title: 'y' } }]);
    assert.ok(await node.idle());
    assert.equal(node.processor.stats.reruns, 1);
    assert.equal(node.processor.stats.failed, 2);
    // After it, a failure runs its batch again.
    clock.advance(31_000);
    await node.emitMany([{ event: `${TODO}.created`, payload: { slug: 'ok-3', title: 'x' } }, { event: `${TODO}.created`, payload: { slug: 'bad-3', title: 'y' } }]);
    assert.ok(await node.idle());
    assert.equal(node.processor.stats.reruns, 2);
    assert.equal(node.processor.stats.failed, 3);
    assert.equal(node.ns.deadLetters.list().length, 3);
    const slugsNow = node.ns.notifications.list({ limit: 200 }).items.filter((n) => n.eventType === `${TODO}.created`).map((n) => n.payload.slug);
    assert.ok(slugsNow.includes('ok-2') && slugsNow.includes('ok-3'));
    assert.ok(!slugsNow.some((s) => String(s).startsWith('bad')));
  } finally {
    await node.stop();
    t.cleanup();
  }
});

test('a batch run again after a failure still reports the burst its first run reported', async () => {
  const t = tempDir('weft-rerun-burst-');
  const node = await createNode({
    dataDir: t.dir,
    computer: 'test',
    cartridges: (_d, stores) =>
      systemPipeline({ correlation: { burst: { windowMs: 60_000, threshold: 5 }, cascade: false } }, { after: [boomOnBad(stores)] })(stores),
  });
  await node.start();
  try {
    // The burst is detected at the 5th event; the stage after correlation throws on the 8th.
    const slugs = Array.from({ length: 10 }, (_, i) => (i === 7 ? 'bad' : `b${i}`));
    await node.emitMany(slugs.map((slug) => ({ event: `${TODO}.created`, payload: { slug, title: slug } })));
    assert.ok(await node.idle());
    assert.equal(node.processor.stats.reruns, 1);
    assert.equal(node.ns.log.list({ type: BURST_DETECTED, limit: 10 }).length, 1);
  } finally {
    await node.stop();
    t.cleanup();
  }
});

test('a batch run again after a failure takes its rate tokens once and raises the throttle notice its first run raised', async () => {
  const clock = new ManualClock(Date.now());
  const t = tempDir('weft-rerun-trust-');
  // The stage that throws runs before trust, so the first run throttles the source before it fails.
  const trust = trustEvaluator({ rate: { perSecond: 0.001, burst: 3 } });
  const node = await createNode(
    { dataDir: t.dir, computer: 'test', cartridges: (d, stores) => [boomOnBad(stores), trust(stores), d.dedup, d.projection] },
    { clock },
  );
  await node.start();
  try {
    // Three pass, the 4th starts the throttling (its notice), the 6th makes the batch run again.
    const slugs = Array.from({ length: 10 }, (_, i) => (i === 5 ? 'bad' : `r${i}`));
    await node.emitMany(slugs.map((slug) => ({ event: `${TODO}.created`, payload: { slug, title: slug } })));
    assert.ok(await node.idle());
    assert.equal(node.processor.stats.reruns, 1);
    assert.equal(node.ns.log.list({ type: TRUST_THROTTLED, limit: 10 }).length, 1, 'the notice of the rolled-back run is raised again');
    const created = node.ns.notifications.list({ limit: 200 }).items.filter((n) => n.eventType === `${TODO}.created`);
    assert.deepEqual(created.map((n) => n.payload.slug).sort(), ['r0', 'r1', 'r2'], 'the first three still had their tokens in the second run');
    // The rest of the todos were held (the 6th was dead-lettered before trust saw it).
    const held = node.ns.quarantine.list({ limit: 100 }).filter((q) => q.eventType === `${TODO}.created`);
    assert.deepEqual(held.map((q) => q.envelope.payload.slug).sort(), ['r3', 'r4', 'r6', 'r7', 'r8', 'r9']);
  } finally {
    await node.stop();
    t.cleanup();
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
