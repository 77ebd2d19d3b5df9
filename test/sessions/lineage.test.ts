/**
 * Session lineage: the envelope fields and their byte forms, the index's rules (parent set
 * once, conflicting claims recorded, cycles and over-deep chains refused, bounded answers),
 * the lineage stage in the pipeline (local emits and the Redis stream format), and the
 * acceptance test: sessions spawned on three real daemons show as one tree on each.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { sessionOfEmit } from '../../src/cli/commands/sessions.js';
import { buildApi, sessionRoutes } from '../../src/api/index.js';
import { systemPipeline } from '../../src/cartridges/index.js';
import {
  type Envelope,
  emitInputValidator,
  envelopeValidator,
  fieldsFromArray,
  fromStreamFields,
  parseEnvelope,
  serializeEnvelope,
  toStreamFields,
} from '../../src/envelope/index.js';
import { fromTeleClaudeJson } from '../../src/mesh/index.js';
import { createNode, type WeftNode } from '../../src/node/index.js';
import type { Cartridge } from '../../src/pipeline/index.js';
import { type SessionForest, SessionLineage, type SessionSighting, type SessionTree, type SessionTreeNode, Store } from '../../src/store/index.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/node.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const T0 = Date.parse('2026-12-01T08:00:00.000Z');

function envelope(extra: Partial<Envelope> = {}): Envelope {
  return {
    id: '0192f000-0000-7000-8000-000000000001',
    event: 'mesh.test.ping',
    version: 1,
    source: 'test',
    timestamp: '2026-12-01T08:00:00.000Z',
    level: 1,
    domain: 'mesh',
    description: 'ping',
    visibility: 'cluster',
    payload: { n: 1 },
    ...extra,
  };
}

/** An index on a fresh store file, and a helper that records sightings in one transaction each. */
function openIndex(init: ConstructorParameters<typeof SessionLineage>[1] = {}) {
  const t = tempDir('weft-lineage-');
  const store = Store.open({ path: join(t.dir, 'weft.db') }, { clock: new ManualClock(T0), logger: silentLogger });
  const lineage = new SessionLineage(store, init);
  let n = 0;
  const see = (session: string, parentSession?: string, more: Partial<SessionSighting> = {}) =>
    store.write(() => lineage.record({ session, ...(parentSession ? { parentSession } : {}), at: T0 + ++n * 1000, eventId: `e${n}`, computer: 'laptop', node: 'weft:ed25519:x', ...more }));
  return {
    lineage,
    see,
    close: async () => {
      await store.close();
      t.cleanup();
    },
  };
}

/** The tree as `session(child,child(...))`, children in order: easy to compare. */
function shape(n: SessionTreeNode): string {
  return n.children.length === 0 ? n.session : `${n.session}(${n.children.map(shape).join(',')})`;
}

function find(n: SessionTreeNode, session: string): SessionTreeNode | undefined {
  if (n.session === session) return n;
  for (const c of n.children) {
    const f = find(c, session);
    if (f) return f;
  }
  return undefined;
}

describe('envelope: session fields', () => {
  test('session and parentSession survive the stable byte form and the Redis stream format', () => {
    const e = envelope({ session: 'build-42.lint', parentSession: 'build-42', causationId: 'c1' });
    const s = serializeEnvelope(e);
    assert.equal(serializeEnvelope(parseEnvelope(s)), s);
    assert.deepEqual(parseEnvelope(s), e);
    const fields = toStreamFields(e);
    assert.equal(fields[fields.indexOf('session') + 1], 'build-42.lint');
    assert.equal(fields[fields.indexOf('parent_session') + 1], 'build-42');
    assert.deepEqual(fromStreamFields(fieldsFromArray(fields), '1-0'), e);
    // without them, the byte forms are what they were before the fields existed
    const plain = envelope();
    assert.ok(!serializeEnvelope(plain).includes('session'));
    assert.ok(!toStreamFields(plain).some((f) => f.includes('session')));
  });

  test("TeleClaude's session_id and initiator_session_id are read as session and parentSession", () => {
    const base = { event: 'mesh.test.ping', source: 'teleclaude', timestamp: '2026-12-01T08:00:00.123456+00:00', level: '1', payload: '{"n":1}' };
    const tc = fromStreamFields({ ...base, session_id: '3f0c9a4e-1b2d-4c5e-8f70-0a1b2c3d4e5f', initiator_session_id: 'a9e1c2d3-0000-4000-8000-000000000001' }, '1-1');
    assert.equal(tc.session, '3f0c9a4e-1b2d-4c5e-8f70-0a1b2c3d4e5f');
    assert.equal(tc.parentSession, 'a9e1c2d3-0000-4000-8000-000000000001');
    // our own names win when both are there; empty means absent
    const both = fromStreamFields({ ...base, session: 'ours', session_id: 'theirs', parent_session: '', initiator_session_id: '' }, '1-2');
    assert.equal(both.session, 'ours');
    assert.equal(both.parentSession, undefined);
    // the TeleClaude JSON wire (a mesh_event payload with extras) reads the same names
    const json = fromTeleClaudeJson(JSON.stringify({ event: 'mesh.test.ping', source: 'tc', timestamp: '2026-12-01T08:00:00+00:00', level: 1, payload: { n: 2 }, session_id: 'child', initiator_session_id: 'parent', entity: null }), '5-0');
    assert.equal(json.session, 'child');
    assert.equal(json.parentSession, 'parent');
  });

  test('a session id is bounded and of a safe charset; the error names the field in words', () => {
    for (const ok of ['a', 'build-42', '3f0c9a4e-1b2d-4c5e-8f70-0a1b2c3d4e5f', 'host:1234', 'tc_session_801', 'me@laptop', 'x'.repeat(200)]) {
      assert.equal(envelopeValidator.firstError(envelope({ session: ok })), undefined, ok);
    }
    for (const bad of ['', ' lead', 'a b', 'a/b', '-dash', '$(rm)', 'x'.repeat(201), 'é']) {
      const err = envelopeValidator.firstError(envelope({ session: bad }));
      assert.equal(err?.path, '/session', JSON.stringify(bad));
    }
    assert.throws(() => envelopeValidator.assert(envelope({ parentSession: 'a b' }), 'envelope'), /field '\/parentSession' must start with a letter or digit and hold only letters, digits and/);
    assert.equal(emitInputValidator.check({ event: 'mesh.test.ping', session: 's', parentSession: 'p' }), true);
  });
});

describe('weft emit: --session, --parent-session and the environment', () => {
  test('flags win; WEFT_SESSION and WEFT_PARENT_SESSION are taken as a pair', () => {
    assert.deepEqual(sessionOfEmit({}, {}), {});
    assert.deepEqual(sessionOfEmit({}, { WEFT_SESSION: 'b', WEFT_PARENT_SESSION: 'a' }), { session: 'b', parentSession: 'a' });
    assert.deepEqual(sessionOfEmit({}, { WEFT_SESSION: 'b', WEFT_PARENT_SESSION: '' }), { session: 'b' });
    assert.deepEqual(sessionOfEmit({ session: 'x' }, { WEFT_SESSION: 'b', WEFT_PARENT_SESSION: 'a' }), { session: 'x' }, "the environment's parent belongs to the environment's session");
    assert.deepEqual(sessionOfEmit({ parentSession: 'p' }, { WEFT_SESSION: 'b', WEFT_PARENT_SESSION: 'a' }), { session: 'b', parentSession: 'p' });
    assert.throws(() => sessionOfEmit({}, { WEFT_SESSION: 'has space' }), /WEFT_SESSION must start with a letter or digit/);
    assert.throws(() => sessionOfEmit({}, { WEFT_PARENT_SESSION: 'a' }), /WEFT_PARENT_SESSION needs a session of its own/);
    assert.throws(() => sessionOfEmit({ session: 'a', parentSession: 'a' }, {}), /cannot spawn itself/);
  });
});

describe('session index', () => {
  test("a session's parent is set once; a different claim is recorded beside it, never written over it", async () => {
    const ix = openIndex();
    try {
      assert.deepEqual(await ix.see('root'), { indexed: true, parent: 'none' });
      assert.deepEqual(await ix.see('child', 'root'), { indexed: true, parent: 'set' });
      assert.deepEqual(await ix.see('child', 'root'), { indexed: true, parent: 'same' });
      assert.deepEqual(await ix.see('child'), { indexed: true, parent: 'none' });
      assert.deepEqual(await ix.see('child', 'impostor', { computer: 'other', eventId: 'bad-1' }), { indexed: true, parent: 'conflict', newClaim: true });
      assert.deepEqual(await ix.see('child', 'impostor'), { indexed: true, parent: 'conflict', newClaim: false });
      const child = ix.lineage.get('child');
      assert.equal(child.parent, 'root');
      assert.equal(child.events, 5);
      assert.equal(child.computer, 'laptop');
      const claims = ix.lineage.claims('child');
      assert.equal(claims.length, 1);
      assert.deepEqual({ ...claims[0], firstAt: undefined, lastAt: undefined }, { parent: 'impostor', kind: 'conflict', count: 2, eventId: 'bad-1', computer: 'other', node: 'weft:ed25519:x', firstAt: undefined, lastAt: undefined });
      // the impostor is not in the tree: the claim shows on the child instead
      const t = ix.lineage.tree('child');
      assert.equal(shape(t.root), 'root(child)');
      assert.equal(find(t.root, 'child')?.claims?.[0]?.parent, 'impostor');
      assert.equal(ix.lineage.stats().claims.conflict, 1);
    } finally {
      await ix.close();
    }
  });

  test('a parent not seen yet stands in the tree with no events, and takes its place when its own events come', async () => {
    const ix = openIndex();
    try {
      await ix.see('grandchild', 'child');
      await ix.see('child', 'root');
      let t = ix.lineage.tree('grandchild');
      assert.equal(shape(t.root), 'root(child(grandchild))');
      assert.equal(t.root.events, 0);
      assert.equal(t.root.firstSeen, null);
      assert.equal(t.root.computer, null);
      await ix.see('root', undefined, { computer: 'desk', at: T0 - 60_000 });
      await ix.see('root', undefined, { computer: 'laptop', at: T0 + 3_600_000 });
      t = ix.lineage.tree('child');
      assert.equal(t.root.events, 2);
      assert.equal(t.root.computer, 'desk', 'the computer of its first own event');
      assert.equal(t.root.firstSeen, new Date(T0 - 60_000).toISOString());
      assert.equal(t.root.lastSeen, new Date(T0 + 3_600_000).toISOString());
      assert.equal(t.focus, 'child');
      assert.equal(t.sessions, 3);
      assert.equal(t.truncated, false);
    } finally {
      await ix.close();
    }
  });

  test('a claim that would close a loop is refused and recorded, whatever its length', async () => {
    const ix = openIndex();
    try {
      await ix.see('a');
      await ix.see('b', 'a');
      await ix.see('c', 'b');
      assert.deepEqual(await ix.see('a', 'c'), { indexed: true, parent: 'cycle', newClaim: true });
      assert.deepEqual(await ix.see('a', 'a'), { indexed: true, parent: 'cycle', newClaim: true }, 'its own parent');
      assert.equal(ix.lineage.get('a').parent, null);
      assert.equal(shape(ix.lineage.tree('c').root), 'a(b(c))');
      assert.deepEqual(
        ix.lineage.claims('a').map((c) => [c.parent, c.kind]),
        [
          ['c', 'cycle'],
          ['a', 'cycle'],
        ],
      );
      // two sessions that each claim the other: the first claim stands, the second is refused
      await ix.see('x', 'y');
      assert.equal((await ix.see('y', 'x')).parent, 'cycle');
      assert.equal(shape(ix.lineage.tree('x').root), 'y(x)');
    } finally {
      await ix.close();
    }
  });

  test('chains are bounded: a link that gives a session more than maxDepth ancestors is refused', async () => {
    const ix = openIndex({ maxDepth: 3 });
    try {
      await ix.see('s0');
      for (let i = 1; i <= 3; i++) assert.equal((await ix.see(`s${i}`, `s${i - 1}`)).parent, 'set');
      assert.deepEqual(await ix.see('s4', 's3'), { indexed: true, parent: 'depth', newClaim: true });
      assert.equal(ix.lineage.get('s4').parent, null, 's4 stays a root of its own');
      assert.equal(ix.lineage.stats().claims.depth, 1);
    } finally {
      await ix.close();
    }
  });

  test('chains are bounded below a session too: a session with children takes a parent only if its deepest descendant stays within maxDepth', async () => {
    const ix = openIndex({ maxDepth: 3 });
    try {
      // Bottom-up, as events from several nodes may arrive: each child names its parent first.
      assert.equal((await ix.see('s3', 's2')).parent, 'set');
      assert.equal((await ix.see('s2', 's1')).parent, 'set');
      assert.equal((await ix.see('s1', 's0')).parent, 'set', 's3 has 3 ancestors');
      assert.deepEqual(await ix.see('s0', 'r'), { indexed: true, parent: 'depth', newClaim: true }, 's3 would have 4');
      assert.equal(ix.lineage.get('s0').parent, null);
      assert.equal(ix.lineage.tree('s3').root.session, 's0');
      // Two chains joined: a two-level tree under a one-level one is fine, one more level is not.
      await ix.see('b1', 'b0');
      await ix.see('a1', 'a0');
      assert.equal((await ix.see('b0', 'a1')).parent, 'set', 'b1 has 3 ancestors');
      await ix.see('c2', 'c1');
      await ix.see('c1', 'c0');
      assert.equal((await ix.see('c0', 'a0')).parent, 'set', 'c2 has 3 ancestors');
      assert.equal((await ix.see('a0', 'z')).parent, 'depth', 'b1 and c2 would have 4');
      // A cycle through a deep subtree is still a cycle.
      assert.equal((await ix.see('a0', 'c1')).parent, 'cycle');
      // However the tree was built, no session has more than maxDepth ancestors.
      for (const leaf of ['s3', 'b1', 'c2']) {
        let n = 0;
        for (let cur = ix.lineage.get(leaf).parent; cur !== null; cur = ix.lineage.get(cur).parent) n++;
        assert.ok(n <= 3, `${leaf} has ${n} ancestors`);
      }
    } finally {
      await ix.close();
    }
  });

  test('an index written before heights were kept gets them on upgrade (migration 24)', async () => {
    const t = tempDir('weft-lineage-upgrade-');
    try {
      const path = join(t.dir, 'weft.db');
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      for (const m of MIGRATIONS.filter((x) => x.version <= 23)) {
        db.exec(m.sql);
        db.pragma(`user_version = ${m.version}`);
      }
      const add = db.prepare('INSERT INTO sessions (session, parent, events, indexed_at) VALUES (?, ?, 1, 0)');
      add.run('r', null);
      add.run('a', 'r');
      add.run('b', 'a');
      add.run('c', 'b');
      add.run('x', 'r');
      db.close();
      const store = Store.open({ path }, { clock: new ManualClock(T0), logger: silentLogger });
      try {
        const heights = Object.fromEntries((store.db.prepare('SELECT session, height FROM sessions ORDER BY session').all() as Array<{ session: string; height: number }>).map((r) => [r.session, r.height]));
        assert.deepEqual(heights, { a: 2, b: 1, c: 0, r: 3, x: 0 });
        // With maxDepth 3, c already has 3 ancestors: r cannot take a parent.
        const lineage = new SessionLineage(store, { maxDepth: 3 });
        const out = await store.write(() => lineage.record({ session: 'r', parentSession: 'q', at: T0, eventId: 'e1' }));
        assert.equal(out.parent, 'depth');
      } finally {
        await store.close();
      }
    } finally {
      t.cleanup();
    }
  });

  test('tree answers are bounded by depth and size, and say what they left out', async () => {
    const ix = openIndex();
    try {
      await ix.see('r');
      for (const c of ['c1', 'c2', 'c3']) await ix.see(c, 'r');
      await ix.see('g1', 'c1');
      await ix.see('gg1', 'g1');
      await ix.see('g2', 'c1');
      let t: SessionTree = ix.lineage.tree('r');
      assert.equal(shape(t.root), 'r(c1(g1(gg1),g2),c2,c3)', 'children oldest first');
      // asked from deep down: the root's whole tree, siblings along the path included
      assert.equal(shape(ix.lineage.tree('gg1').root), 'r(c1(g1(gg1),g2),c2,c3)');
      t = ix.lineage.tree('r', { depth: 1 });
      assert.equal(shape(t.root), 'r(c1,c2,c3)');
      assert.equal(find(t.root, 'c1')?.more, 2);
      assert.equal(t.truncated, true);
      // the session asked about is always shown, with its path from the root and its own subtree
      t = ix.lineage.tree('g1', { depth: 1 });
      assert.equal(shape(t.root), 'r(c1(g1(gg1)),c2,c3)');
      assert.equal(find(t.root, 'c1')?.more, 1);
      t = ix.lineage.tree('gg1', { depth: 0 });
      assert.equal(shape(t.root), 'r(c1(g1(gg1)))');
      assert.equal(t.root.more, 2);
      assert.equal(find(t.root, 'c1')?.more, 1);
      t = ix.lineage.tree('r', { limit: 3 });
      assert.equal(t.sessions, 3);
      assert.equal(t.truncated, true);
      assert.throws(() => ix.lineage.tree('r', { depth: 10_000 }), /depth must be a whole number from 0 to 256/);
      assert.throws(() => ix.lineage.tree('nobody'), /session nobody not found/);
      // the forest: most recently active root first
      await ix.see('other');
      const f: SessionForest = ix.lineage.forest();
      assert.deepEqual(
        f.trees.map((x) => x.session),
        ['other', 'r'],
      );
      assert.equal(f.roots, 2);
      assert.equal(ix.lineage.forest({ roots: 1 }).truncated, true);
    } finally {
      await ix.close();
    }
  });

  test('a tree over a session with 300,000 children holds in memory the sessions it shows, not every child', async () => {
    const t = tempDir('weft-lineage-wide-');
    const store = Store.open({ path: join(t.dir, 'weft.db') }, { clock: new ManualClock(T0), logger: silentLogger });
    try {
      const lineage = new SessionLineage(store);
      const add = store.db.prepare('INSERT INTO sessions (session, parent, first_seen, last_seen, events, indexed_at) VALUES (?, ?, ?, ?, 1, 0)');
      await store.write(() => {
        add.run('wide', null, T0, T0);
        for (let i = 0; i < 300_000; i++) add.run(`w${i}`, 'wide', T0 + i, T0 + i);
      });
      // What the answer costs the node's heap (and so its one thread): measured from a clean heap.
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      gc();
      const before = process.memoryUsage().heapUsed;
      const tree = lineage.tree('w5');
      const grew = process.memoryUsage().heapUsed - before;
      assert.equal(tree.root.session, 'wide');
      assert.equal(tree.sessions, 2000);
      assert.equal(tree.root.more, 300_000 - 1999);
      assert.ok(find(tree.root, 'w5'), 'the session asked about is shown');
      assert.ok(grew < 32 * 1024 * 1024, `the answer took ${Math.round(grew / 1048576)} MiB of heap`);
    } finally {
      await store.close();
      t.cleanup();
    }
  });

  test('the index is bounded: sessions past maxSessions and claims past the per-session limit are counted, not kept', async () => {
    const ix = openIndex({ maxSessions: 3, maxClaimsPerSession: 2 });
    try {
      await ix.see('a');
      await ix.see('b', 'a');
      for (const p of ['p1', 'p2', 'p3']) await ix.see('b', p);
      assert.equal(ix.lineage.claims('b').length, 2);
      await ix.see('c');
      assert.deepEqual(await ix.see('d'), { indexed: false, parent: 'full' });
      assert.deepEqual(await ix.see('c', 'x'), { indexed: true, parent: 'full' }, 'a new parent needs room too');
      const s = ix.lineage.stats();
      assert.equal(s.sessions, 3);
      assert.equal(s.refused, 2);
      assert.equal(s.claimsDropped, 1);
      assert.equal(ix.lineage.list().items.length, 3);
    } finally {
      await ix.close();
    }
  });

  test('list pages most recently active first, parents-only sessions last', async () => {
    const ix = openIndex();
    try {
      await ix.see('b', 'placeholder');
      await ix.see('c');
      const p1 = ix.lineage.list({ limit: 2 });
      assert.deepEqual(
        p1.items.map((s) => s.session),
        ['c', 'b'],
      );
      assert.equal(p1.nextOffset, 2);
      const p2 = ix.lineage.list({ limit: 2, offset: 2 });
      assert.deepEqual(
        p2.items.map((s) => s.session),
        ['placeholder'],
      );
      assert.equal(p2.nextOffset, null);
      assert.equal(ix.lineage.list({ computer: 'nowhere' }).items.length, 0);
    } finally {
      await ix.close();
    }
  });
});

/** A node with the whole system pipeline (the lineage stage is its last stage). */
async function lineageNode(dir: string, extra: { redis?: { url: string; stream: string }; after?: Cartridge[] } = {}): Promise<WeftNode> {
  const node = await createNode({
    dataDir: dir,
    computer: 'laptop',
    ...(extra.redis ? { redis: extra.redis } : {}),
    cartridges: (_d, stores) => systemPipeline({ trust: { rate: { perSecond: 1e6, burst: 1e6 } } }, { after: extra.after ?? [] })(stores),
  });
  node.setNodeId('weft:ed25519:test-node');
  await node.start();
  return node;
}

describe('the lineage stage', () => {
  test('is the last system stage and indexes each accepted event once', async () => {
    const t = tempDir('weft-lineage-node-');
    // A cartridge that answers ping 1 with ping 100: an event caused by one in a session.
    const echo: Cartridge = {
      name: 'echo',
      process: (e, ctx) => {
        if (e.payload.n === 1) ctx.emit({ event: 'mesh.test.ping', payload: { n: 100 } });
        return e;
      },
    };
    const node = await lineageNode(t.dir, { after: [echo] });
    try {
      assert.deepEqual(node.pipeline.order.slice(-2), ['session-lineage', 'echo']);
      const lineage = new SessionLineage(node.ns.store);
      await node.emit({ event: 'mesh.test.ping', payload: { n: 1 }, session: 'root' });
      await node.emit({ event: 'mesh.test.ping', payload: { n: 2 }, session: 'child', parentSession: 'root' });
      // a redelivery of the same idempotency key is dropped by dedup before it is counted
      await node.emit({ event: 'mesh.test.ping', payload: { n: 3 }, session: 'child', parentSession: 'root', idempotencyKey: 'k1' });
      await node.emit({ event: 'mesh.test.ping', payload: { n: 3 }, session: 'child', parentSession: 'root', idempotencyKey: 'k1' });
      await node.emit({ event: 'mesh.test.ping', payload: { n: 4 } });
      await waitFor(() => node.processor.stats.processed >= 6, 10_000, 'processed');
      const tree = lineage.tree('child');
      assert.equal(shape(tree.root), 'root(child)');
      assert.equal(find(tree.root, 'child')?.events, 2);
      assert.equal(tree.root.computer, 'laptop');
      assert.equal(tree.root.node, 'weft:ed25519:test-node');
      // a child event inherits nothing: what a cartridge emits carries its cause, not the session
      const caused = node.ns.log.list({ limit: 100 }).map((e) => e.envelope).find((e) => e.payload.n === 100);
      assert.ok(caused?.causationId !== undefined);
      assert.equal(caused.session, undefined);
      assert.equal(node.ns.log.get(caused.causationId)?.envelope.session, 'root');
      await assert.rejects(node.emit({ event: 'mesh.test.ping', payload: { n: 5 }, parentSession: 'root' }), /field '\/parentSession' needs '\/session' too/);
      await assert.rejects(node.emit({ event: 'mesh.test.ping', payload: { n: 5 }, session: 'a b' }), /field '\/session' must start with a letter or digit/);
    } finally {
      await node.stop();
      t.cleanup();
    }
  });
});

describe('HTTP: /api/sessions', () => {
  test('lists sessions and answers trees; ids and limits are validated; every route is documented', async () => {
    const t = tempDir('weft-lineage-api-');
    const node = await lineageNode(t.dir);
    const { app } = await buildApi({ token: 'tok' }, { node, logger: silentLogger, extraRoutes: [sessionRoutes({ store: node.ns.store })] });
    const headers = { authorization: 'Bearer tok' };
    const get = (url: string) => app.inject({ method: 'GET', url, headers });
    try {
      const posted = await app.inject({ method: 'POST', url: '/api/events', headers, payload: { event: 'mesh.test.ping', payload: { n: 1 }, session: 's-1', parentSession: 's-0' } });
      assert.equal(posted.statusCode, 201, posted.body);
      await waitFor(() => node.processor.stats.processed >= 1, 10_000, 'processed');
      const list = (await get('/api/sessions?limit=10')).json() as { items: Array<{ session: string }>; stats: { sessions: number } };
      assert.deepEqual(
        list.items.map((x) => x.session),
        ['s-1', 's-0'],
      );
      assert.equal(list.stats.sessions, 2);
      const tree = (await get('/api/sessions/s-1/tree?depth=3')).json() as SessionTree;
      assert.equal(shape(tree.root), 's-0(s-1)');
      assert.equal(tree.depth, 3);
      const forest = (await get('/api/sessions/tree')).json() as SessionForest;
      assert.equal(forest.trees.length, 1);
      const nf = await get('/api/sessions/nobody/tree');
      assert.equal(nf.statusCode, 404);
      assert.equal((nf.json() as { error: { code: string } }).error.code, 'WEFT_NOT_FOUND');
      assert.equal((await get('/api/sessions/bad%20id/tree')).statusCode, 400);
      assert.equal((await get('/api/sessions/s-1/tree?depth=9999')).statusCode, 400);
      assert.equal((await get('/api/sessions?limit=0')).statusCode, 400);
      const doc = (await get('/openapi.json')).json() as { paths: Record<string, { get?: { summary: string } }> };
      for (const path of ['/api/sessions', '/api/sessions/tree', '/api/sessions/{id}/tree']) {
        assert.ok(doc.paths[path]?.get && doc.paths[path].get.summary !== '(undocumented)', path);
      }
    } finally {
      await app.close();
      await node.stop();
      t.cleanup();
    }
  });
});

describe('Redis stream format', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    await redis?.stop();
  });

  test('sessions round-trip through the Redis bus, and a TeleClaude producer’s session_id joins the tree', async () => {
    const t = tempDir('weft-lineage-redis-');
    const stream = `weft:lineage-${process.pid}`;
    const node = await lineageNode(t.dir, { redis: { url: redis.url, stream } });
    const r = new Redis(redis.url);
    try {
      // ours: XADDed by the bus with session / parent_session, read back and indexed
      const emitted = await node.emit({ event: 'mesh.test.ping', payload: { n: 1 }, session: 'tc-root' });
      await node.emit({ event: 'mesh.test.ping', payload: { n: 2 }, session: 'weft-child', parentSession: 'tc-root' });
      // theirs: a producer without our library, in TeleClaude's own names
      await r.xadd(stream, '*', 'event', 'mesh.test.ping', 'source', 'teleclaude', 'timestamp', '2026-12-01T08:00:00.123456+00:00', 'level', '1', 'payload', '{"n":3}', 'session_id', 'tc-worker', 'initiator_session_id', 'weft-child');
      const entries = await r.xrange(stream, '-', '+');
      const ours = entries.map(([, f]) => fieldsFromArray(f)).find((f) => f.id === emitted.id);
      assert.equal(ours?.session, 'tc-root');
      const lineage = new SessionLineage(node.ns.store);
      await waitFor(() => lineage.stats().sessions === 3 && lineage.get('tc-worker').parent === 'weft-child', 10_000, 'all three indexed');
      assert.equal(shape(lineage.tree('tc-worker').root), 'tc-root(weft-child(tc-worker))');
      assert.equal(node.ns.log.get(emitted.id)?.envelope.session, 'tc-root');
    } finally {
      r.disconnect();
      await node.stop();
      t.cleanup();
    }
  });
});

describe('acceptance: sessions spawned on three nodes show as one tree on each', () => {
  let nodes: Record<string, ClusterNode>;
  let stopAll: (() => Promise<void>) | undefined;
  const t = tempDir('weft-lineage-cluster-');
  const SPECS = [
    { computer: 'alpha', cluster: 'home' },
    { computer: 'beta', cluster: 'home' },
    { computer: 'gamma', cluster: 'home' },
  ];
  before(async () => {
    const c = await startCluster(t.dir, SPECS, { provider: 'tls' });
    nodes = c.nodes;
    stopAll = c.stopAll;
  });
  after(async () => {
    await stopAll?.();
    t.cleanup();
  });

  test('root on alpha, a child on beta, a grandchild on gamma, another child on alpha', async () => {
    const a = nodes.alpha as ClusterNode;
    const b = nodes.beta as ClusterNode;
    const g = nodes.gamma as ClusterNode;
    const run = `${process.pid}`;
    const ROOT = `root-${run}`;
    const CHILD_B = `child-b-${run}`;
    const GRAND_C = `grand-c-${run}`;
    const CHILD_A = `child-a-${run}`;
    const emit = (n: ClusterNode, i: number, args: string[], env: NodeJS.ProcessEnv = {}) => {
      const r = weft(['emit', 'mesh.test.ping', '--visibility', 'cluster', '-p', JSON.stringify({ n: i, note: 'lineage' }), ...args], { ...n.env, ...env });
      assert.equal(r.code, 0, r.stderr);
    };
    // A producer in a session exports WEFT_SESSION; one it spawns exports its own with WEFT_PARENT_SESSION.
    emit(a, 1, [], { WEFT_SESSION: ROOT });
    emit(a, 2, [], { WEFT_SESSION: ROOT });
    emit(b, 3, [], { WEFT_SESSION: CHILD_B, WEFT_PARENT_SESSION: ROOT });
    emit(g, 4, ['--session', GRAND_C, '--parent-session', CHILD_B]);
    emit(a, 5, ['--session', CHILD_A, '--parent-session', ROOT]);
    emit(b, 6, [], { WEFT_SESSION: CHILD_B, WEFT_PARENT_SESSION: ROOT });

    const expected = { [ROOT]: { computer: 'alpha', events: 2 }, [CHILD_B]: { computer: 'beta', events: 2 }, [GRAND_C]: { computer: 'gamma', events: 1 }, [CHILD_A]: { computer: 'alpha', events: 1 } };
    const treeOn = (n: ClusterNode): SessionTree | undefined => {
      const r = weft(['sessions', 'tree', ROOT, '--json'], n.env);
      return r.code === 0 ? (JSON.parse(r.stdout) as SessionTree) : undefined;
    };
    const complete = (tr: SessionTree | undefined) =>
      tr !== undefined && Object.entries(expected).every(([s, want]) => find(tr.root, s)?.events === want.events);
    for (const n of [a, b, g]) {
      // Delivery is asynchronous; the API answers from committed data.
      await eventually(async () => complete(await n.api.request<SessionTree>('GET', `/api/sessions/${ROOT}/tree`)), 30_000, `the whole tree on ${n.computer}`);
    }
    const shapes = new Set<string>();
    for (const n of [a, b, g]) {
      const tr = treeOn(n);
      assert.ok(tr, `weft sessions tree on ${n.computer}`);
      assert.ok(complete(tr));
      assert.equal(tr.root.session, ROOT);
      shapes.add(shape(tr.root));
      for (const [s, want] of Object.entries(expected)) {
        const node = find(tr.root, s) as SessionTreeNode;
        assert.equal(node.computer, want.computer, `${s} runs on ${want.computer} (seen from ${n.computer})`);
        assert.equal(node.node, (nodes[want.computer] as ClusterNode).nodeId);
        assert.ok(node.firstSeen !== null && node.lastSeen !== null);
        assert.equal(node.claims, undefined);
      }
      // asked from the grandchild, the same tree: its root and every descendant
      const fromLeaf = weft(['sessions', 'tree', GRAND_C, '--json'], n.env);
      assert.equal(fromLeaf.code, 0, fromLeaf.stderr);
      assert.equal(shape((JSON.parse(fromLeaf.stdout) as SessionTree).root), shape(tr.root));
    }
    assert.equal(shapes.size, 1, `one tree on every node: ${[...shapes].join(' | ')}`);
    assert.equal([...shapes][0], `${ROOT}(${CHILD_B}(${GRAND_C}),${CHILD_A})`);

    // the human view and the list, through the CLI
    const human = weft(['sessions', 'tree', ROOT, '--depth', '1'], g.env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`${CHILD_B} +\\[beta · 2 events`));
    assert.match(human.stdout, /1 more \(raise --depth or --limit\)/);
    const list = weft(['sessions', 'list', '--json'], b.env);
    assert.equal(list.code, 0, list.stderr);
    assert.equal((JSON.parse(list.stdout) as { stats: { sessions: number } }).stats.sessions, 4);
    const forest = weft(['sessions', 'tree', '--json'], a.env);
    assert.equal((JSON.parse(forest.stdout) as SessionForest).trees.length, 1);
    const bad = weft(['emit', 'mesh.test.ping', '-p', '{"n":9}'], { ...a.env, WEFT_SESSION: 'not ok' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /WEFT_SESSION must start with a letter or digit/);
  });
});
