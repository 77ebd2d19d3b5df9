import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createDefaultCatalog } from '../../src/catalog/index.js';
import type { Envelope } from '../../src/envelope/index.js';
import { IllegalTransitionError, NotFoundError, ValidationError } from '../../src/errors/index.js';
import { NOTIFICATION_COLUMNS, type Notification, type NotificationChange, notificationColumns, notificationRowOf, openNodeStore } from '../../src/store/index.js';
import { silentLogger, systemClock } from '../../src/util/index.js';
import type { WeftNode } from '../../src/node/index.js';
import { startTestNode } from '../helpers/node.js';

const TODO = 'domain.software-development.planning.todo';

async function make(node: WeftNode, slug: string, type: 'created' | 'dor_assessed' = 'created'): Promise<number> {
  const payload = type === 'created' ? { slug, title: slug } : { slug, score: 5, verdict: 'needs_work' };
  await node.emit({ event: `${TODO}.${type}`, payload });
  await node.idle();
  const n = node.ns.notifications.list({ eventType: `${TODO}.${type}` }).items.find((x) => x.payload.slug === slug);
  assert.ok(n);
  return n.id;
}

test('every legal and illegal notification transition', async () => {
  const { node, close } = await startTestNode();
  const ns = node.ns.notifications;
  const entry = (t: string) => node.catalog.require(t);
  try {
    // human: unseen → seen, seen again is a no-op
    const a = await make(node, 'a');
    assert.equal((await ns.markSeen(a)).notification.humanStatus, 'seen');
    assert.equal((await ns.markSeen(a)).change, null);

    // agent: none → claimed → in_progress → resolved
    assert.equal((await ns.claim(a, 'agent-1')).notification.agentStatus, 'claimed');
    assert.equal((await ns.claim(a, 'agent-1')).change, null, 'same agent claiming again is a no-op');
    await assert.rejects(ns.claim(a, 'agent-2'), IllegalTransitionError, 'another agent cannot take the claim');
    await assert.rejects(ns.setInProgress(a, 'agent-2'), IllegalTransitionError, 'only the claimant starts work');
    assert.equal((await ns.setInProgress(a, 'agent-1')).notification.agentStatus, 'in_progress');
    await assert.rejects(ns.claim(a, 'agent-1'), IllegalTransitionError, 'in_progress cannot be claimed again');
    await assert.rejects(ns.resolve(a, { agentId: 'agent-2' }), IllegalTransitionError, 'another agent cannot resolve');
    const r = await ns.resolve(a, { agentId: 'agent-1', resolution: { done: true } });
    assert.equal(r.notification.agentStatus, 'resolved');
    assert.deepEqual(r.notification.resolution, { done: true });
    // resolved is final
    await assert.rejects(ns.claim(a, 'agent-1'), IllegalTransitionError);
    await assert.rejects(ns.setInProgress(a, 'agent-1'), IllegalTransitionError);
    await assert.rejects(ns.resolve(a, {}), IllegalTransitionError);

    // none → in_progress is illegal; none → resolved is legal when no claim is required
    const b = await make(node, 'b');
    await assert.rejects(ns.setInProgress(b, 'agent-1'), IllegalTransitionError);
    assert.equal((await ns.resolve(b, { entry: entry(`${TODO}.created`) })).notification.agentStatus, 'resolved');

    // claimed → resolved directly is legal
    const c = await make(node, 'c');
    await ns.claim(c, 'x');
    assert.equal((await ns.resolve(c, { agentId: 'x' })).notification.agentStatus, 'resolved');

    // a type that requires a claim refuses resolving from none, and checks the resolution shape
    const d = await make(node, 'd', 'dor_assessed');
    const dor = entry(`${TODO}.dor_assessed`);
    await assert.rejects(ns.resolve(d, { entry: dor, resolution: { outcome: 'ok' } }), /must be claimed before/);
    await ns.claim(d, 'x');
    await assert.rejects(ns.resolve(d, { agentId: 'x', entry: dor, resolution: { outcome: 3 } }), ValidationError);
    await assert.rejects(ns.resolve(d, { agentId: 'x', entry: dor }), /field 'outcome' must be string \(missing\)/);
    assert.equal((await ns.resolve(d, { agentId: 'x', entry: dor, resolution: { outcome: 'approved' } })).notification.agentStatus, 'resolved');

    // a claim is the holder's: a caller without a name cannot resolve it either (it would be
    // recorded under the holder's name); release gives it back, by the holder or with force
    const e = await make(node, 'e');
    await ns.claim(e, 'agent-1');
    await assert.rejects(ns.resolve(e, { resolution: { outcome: 'hijacked' } }), /claimed by 'agent-1': only 'agent-1' can resolve it/);
    await assert.rejects(ns.release(e, { agentId: 'agent-2' }), /only the holder releases it/);
    await assert.rejects(ns.release(e, {}), ValidationError);
    const freed = await ns.release(e, { agentId: 'agent-1' });
    assert.equal(freed.notification.agentStatus, 'none');
    assert.equal(freed.notification.agentId, null);
    assert.equal(freed.change?.kind, 'released');
    assert.equal((await ns.release(e, { agentId: 'agent-1' })).change, null, 'releasing a free notification is a no-op');
    await ns.claim(e, 'agent-2');
    await ns.setInProgress(e, 'agent-2');
    assert.equal((await ns.release(e, { force: true })).notification.agentStatus, 'none', 'force frees a claim left behind');
    await ns.claim(e, 'agent-3');
    assert.equal((await ns.resolve(e, { agentId: 'agent-3' })).notification.agentId, 'agent-3');
    await assert.rejects(ns.release(e, { force: true }), IllegalTransitionError, 'resolved is final');

    await assert.rejects(ns.markSeen(99999), NotFoundError);
    await assert.rejects(ns.claim(b, ''), ValidationError);
  } finally {
    await close();
  }
});

test('listing filters and pages newest first with a cursor', async () => {
  const { node, close } = await startTestNode();
  try {
    await node.emitMany(Array.from({ length: 7 }, (_, i) => ({ event: `${TODO}.created`, payload: { slug: `p${i}`, title: 't' } })));
    await node.emit({ event: 'system.worker.crashed', payload: { worker: 'w', error: 'e', restarts: 1 } });
    await node.idle();
    const ns = node.ns.notifications;
    const p1 = ns.list({ limit: 3, domain: 'software-development' });
    assert.equal(p1.items.length, 3);
    assert.equal(p1.items[0]?.payload.slug, 'p6');
    const p2 = ns.list({ limit: 3, domain: 'software-development', before: p1.nextCursor ?? 0 });
    assert.deepEqual(p2.items.map((n) => n.payload.slug), ['p3', 'p2', 'p1']);
    const p3 = ns.list({ limit: 3, domain: 'software-development', before: p2.nextCursor ?? 0 });
    assert.deepEqual(p3.items.map((n) => n.payload.slug), ['p0']);
    assert.equal(p3.nextCursor, null);
    assert.equal(ns.list({ minLevel: 2 }).items.length, 7);
    assert.equal(ns.list({ minLevel: 1 }).items.length, 8);
    assert.equal(ns.list({ humanStatus: 'seen' }).items.length, 0);
    // since with a zone means that instant: an hour before the newest, written at +02:00 and at
    // -05:00, finds all eight; an hour after it finds none
    const newest = Date.parse(p1.items[0]?.createdAt as string);
    const at = (ms: number, offsetHours: number) => {
      const local = new Date(ms + offsetHours * 3_600_000).toISOString().slice(0, 19);
      return `${local}${offsetHours >= 0 ? '+' : '-'}${String(Math.abs(offsetHours)).padStart(2, '0')}:00`;
    };
    for (const offset of [2, -5]) {
      assert.equal(ns.list({ since: at(newest - 3_600_000, offset) }).items.length, 8, `an hour before, at ${offset}`);
      assert.equal(ns.list({ since: at(newest + 3_600_000, offset) }).items.length, 0, `an hour after, at ${offset}`);
    }
  } finally {
    await close();
  }
});

test('a notification read back carries every column of its row under its camelCase name, in column order, with JSON and 0/1 columns decoded', async () => {
  const { node, close } = await startTestNode();
  const ns = node.ns.notifications;
  try {
    const a = await make(node, 'shape');
    await ns.claim(a, 'agent-1');
    await ns.resolve(a, { agentId: 'agent-1', resolution: { done: true, why: ['x'] } });
    await ns.markSeen(a);
    const row = node.ns.store.db.prepare('SELECT * FROM notifications WHERE id = ?').get(a) as Record<string, unknown>;
    const camel = (k: string) => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    const expected: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) expected[camel(k)] = v;
    expected.payload = JSON.parse(row.payload as string);
    expected.resolution = JSON.parse(row.resolution as string);
    expected.actionable = row.actionable === 1;
    for (const n of [ns.get(a), ns.getMany([a]).get(a), ns.list({ eventType: `${TODO}.created` }).items.find((x) => x.id === a)]) {
      assert.ok(n);
      assert.deepEqual(Object.keys(n), Object.keys(expected), 'the same fields, in column order');
      assert.deepEqual({ ...n }, expected);
    }
    for (const k of ['seenAt', 'claimedAt', 'resolvedAt', 'agentId']) assert.notEqual(expected[k], null, `${k} was set by the transitions above`);
  } finally {
    await close();
  }
});

test('a created notification is pushed as its insert made it: the same record as the row read back after the commit', async () => {
  const { node, close } = await startTestNode();
  const ns = node.ns.notifications;
  const seen: Array<{ change: NotificationChange; snapshot: Notification | undefined; read: Notification }> = [];
  // As the WebSocket hub does: after the commit, before anything else runs.
  const off = node.onCommitted((b) => {
    for (const change of b.changes) seen.push({ change, snapshot: ns.createdBy(change), read: ns.get(change.id) });
  });
  try {
    await node.emit({ event: `${TODO}.created`, payload: { slug: 'snap', title: 'snap' }, entity: 'todo:snap', idempotencyKey: 'snap-key' });
    await node.emit({ event: `${TODO}.created`, payload: { slug: 'snap2', title: 'snap2' } });
    // Merged into the first one's group: an update, read back.
    await node.emit({ event: `${TODO}.dor_assessed`, payload: { slug: 'snap', score: 5, verdict: 'needs_work' } });
    await node.idle();
    const updated = seen.filter((s) => s.change.kind === 'updated');
    assert.ok(updated.length >= 1 && updated.every((s) => s.snapshot === undefined), 'an update is read back, not made up');
    const created = seen.filter((s) => s.change.kind === 'created');
    assert.ok(created.length >= 2, `two notifications created (${seen.map((s) => s.change.kind).join(', ')})`);
    for (const s of created) {
      assert.ok(s.snapshot, 'a created change knows its notification');
      assert.deepEqual(Object.keys(s.snapshot), Object.keys(s.read));
      assert.deepEqual(s.snapshot, s.read);
    }
    assert.ok(created.some((s) => s.read.entity === 'todo:snap' && s.read.idempotencyKey === 'snap-key'), 'entity and key carried');
    assert.ok(created.some((s) => s.read.groupKey !== null), 'a group key carried');
    // Any other change is read back.
    const a = created[0]?.change.id as number;
    const claim = await ns.claim(a, 'agent-1');
    assert.ok(claim.change);
    assert.equal(ns.createdBy(claim.change), undefined);
  } finally {
    off();
    await close();
  }
});

test('reads take the columns as arrays in the order NOTIFICATION_COLUMNS names them: that list is the table, and each row built from it equals the keyed row', async () => {
  const { node, close } = await startTestNode();
  try {
    const a = await make(node, 'cols-a');
    await make(node, 'cols-b');
    await node.ns.notifications.markSeen(a);
    await node.ns.notifications.claim(a, 'agent-7');
    await node.ns.notifications.resolve(a, { agentId: 'agent-7', resolution: { ok: true } });
    const db = node.ns.store.db;
    // A column added by a migration (or two swapped here) fails this.
    assert.deepEqual([...NOTIFICATION_COLUMNS], db.prepare('SELECT * FROM notifications LIMIT 1').columns().map((c) => c.name));
    const keyed = db.prepare('SELECT * FROM notifications ORDER BY id').all() as Array<Record<string, unknown>>;
    const raw = db.prepare(`SELECT ${notificationColumns()} FROM notifications ORDER BY id`).raw().all() as unknown[][];
    assert.ok(keyed.length >= 2);
    assert.deepEqual(raw.map((r) => notificationRowOf(r)), keyed);
    // Prefixed for joins (the recovery journal's read), the same columns.
    assert.equal(notificationColumns('n'), NOTIFICATION_COLUMNS.map((c) => `n.${c}`).join(', '));
  } finally {
    await close();
  }
});

test("a new notification is marked for the recovery journal when it is this computer's and shared, by its insert (no trigger per row)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-marks-'));
  const ns = openNodeStore({ path: join(dir, 'weft.db') }, { clock: systemClock, logger: silentLogger });
  try {
    const entry = createDefaultCatalog().require('mesh.test.ping');
    const now = new Date().toISOString();
    let i = 0;
    const create = (visibility: string, sourceComputer?: string, idempotencyKey?: string): number => {
      const env = { id: `e-${i++}`, event: 'mesh.test.ping', version: 1, source: 'test', timestamp: now, level: 1, domain: 'mesh', description: 'ping', visibility, payload: { n: i }, ...(sourceComputer ? { sourceComputer } : {}), ...(idempotencyKey ? { idempotencyKey } : {}) } as unknown as Envelope;
      return ns.notifications.createFromEvent(env, entry, now).id;
    };
    const marked = () => ns.store.db.prepare('SELECT id FROM recovery_notes_dirty ORDER BY id').pluck().all() as number[];
    const name = (computer: string) => ns.store.write(() => ns.store.db.prepare("INSERT INTO recovery_state (key, value) VALUES ('computer', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(computer));
    assert.equal(ns.store.db.prepare("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'recovery_notes_inserted'").pluck().get(), 0, 'no insert trigger');

    // Until the journal names this node's computer, every shared row is marked.
    const early = await ns.store.write(() => [create('cluster', 'desk'), create('local', 'desk'), create('public')]);
    assert.deepEqual(marked(), [early[0], early[2]]);

    // Named 'laptop': its own (no computer, or 'laptop') shared rows are; local and another computer's are not.
    await name('laptop');
    const named = await ns.store.write(() => [create('cluster'), create('cluster', 'laptop'), create('public', 'laptop'), create('cluster', 'desk'), create('local')]);
    assert.deepEqual(marked(), [early[0], early[2], named[0], named[1], named[2]]);

    // Renamed: the next write sees the new name.
    await name('desk');
    const renamed = await ns.store.write(() => [create('cluster', 'desk'), create('cluster', 'laptop')]);
    assert.deepEqual(marked().slice(5), [renamed[0]]);

    // A notification refreshed by its idempotency key is a change: the update trigger marks it again.
    await ns.store.write(() => ns.store.db.prepare('DELETE FROM recovery_notes_dirty').run());
    const keyed = await ns.store.write(() => create('cluster', 'desk', 'k-1'));
    const v0 = ns.store.db.prepare('SELECT v FROM recovery_notes_dirty WHERE id = ?').pluck().get(keyed) as number;
    await ns.store.write(() => create('cluster', 'desk', 'k-1'));
    assert.deepEqual(marked(), [keyed]);
    assert.equal(ns.store.db.prepare('SELECT v FROM recovery_notes_dirty WHERE id = ?').pluck().get(keyed), v0 + 1, 'its mark counts the change');
  } finally {
    await ns.store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a build that completed resolves its work item's open notification (as TeleClaude's build.completed does); a failed one updates it", async () => {
  const { node, close } = await startTestNode();
  const ns = node.ns.notifications;
  const BUILD = 'domain.software-development.build.completed';
  try {
    const id = await make(node, 'b1');
    await node.emit({ event: BUILD, payload: { slug: 'b1', success: false, error: '3 tests failed' } });
    await node.emit({ event: BUILD, payload: { slug: 'b1', status: 'failed', build_id: '2' } });
    await node.idle();
    assert.equal(ns.get(id).agentStatus, 'none', 'failed builds leave it open');
    await node.emit({ event: BUILD, payload: { slug: 'b1', build_id: '3' } }); // TeleClaude sends the slug alone
    await node.idle();
    const n = ns.get(id);
    assert.equal(n.agentStatus, 'resolved');
    assert.equal(ns.list({ eventType: BUILD }).items.length, 0, 'no notification of its own');
  } finally {
    await close();
  }
});
