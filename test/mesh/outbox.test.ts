/**
 * The outbox stores an event for many peers once: a public event to 16 peers is one body and
 * 16 rows, each peer's acknowledgement removes its row, the last one the body; an event for
 * one peer keeps its body in its row; a row whose body is gone is dropped, never sent or
 * allowed to stop the link.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { meshPublisher, MeshOutbox, PeerBook } from '../../src/mesh/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { startTestNode } from '../helpers/node.js';

let t: Awaited<ReturnType<typeof startTestNode>>;
before(async () => {
  t = await startTestNode();
});
after(async () => t.close());

const count = (sql: string, ...args: unknown[]) => t.node.ns.store.db.prepare(sql).pluck().get(...args) as number;

test('a public event to 16 peers: one stored body, 16 rows; the last acknowledgement takes the body', async () => {
  const outbox = new MeshOutbox(t.node.ns.store);
  const self = { computer: 'hub', nodeId: 'weft:ed25519:hub' };
  const peers = new PeerBook(
    self,
    Array.from({ length: 16 }, (_, i) => ({ computer: `p${i}`, nodeId: `weft:ed25519:p${i}`, trustLevel: 'peer' as const, origin: 'static' as const })),
  );
  const publisher = meshPublisher({ peers, outbox: () => outbox, self, logger: silentLogger });
  const env = t.node.build({ event: 'mesh.test.ping', visibility: 'public', payload: { n: 1, text: 'x'.repeat(2000) } });
  await t.node.ns.store.write(() =>
    publisher.process(env, { catalog: t.node.catalog, clock: { now: () => Date.now() }, logger: silentLogger, facts: new Map(), self, now: '', notify: () => undefined, emit: () => env } as never),
  );
  assert.equal(count('SELECT COUNT(*) FROM mesh_outbox WHERE envelope_id = ?', env.id), 16);
  assert.equal(count("SELECT COUNT(*) FROM mesh_outbox WHERE envelope_id = ? AND body = ''", env.id), 16, 'the rows hold no copy');
  assert.equal(count('SELECT COUNT(*) FROM mesh_bodies WHERE envelope_id = ?', env.id), 1);
  const bodyBytes = count('SELECT SUM(length(body)) FROM mesh_bodies');
  assert.ok(bodyBytes > 2000 && bodyBytes < 4000, `one copy of the body (${bodyBytes} bytes)`);
  // Every peer reads the whole envelope.
  for (let i = 0; i < 16; i++) {
    const [row] = outbox.peek(`p${i}`, 0, 10);
    assert.equal((JSON.parse(row?.body ?? '{}') as { id?: string }).id, env.id);
  }
  for (let i = 0; i < 15; i++) await outbox.acknowledge(`p${i}`, [env.id]);
  assert.equal(count('SELECT COUNT(*) FROM mesh_outbox WHERE envelope_id = ?', env.id), 1);
  assert.equal(count('SELECT refs FROM mesh_bodies WHERE envelope_id = ?', env.id), 1);
  // An acknowledgement repeated changes nothing.
  await outbox.acknowledge('p3', [env.id]);
  assert.equal(count('SELECT refs FROM mesh_bodies WHERE envelope_id = ?', env.id), 1);
  await outbox.acknowledge('p15', [env.id]);
  assert.equal(count('SELECT COUNT(*) FROM mesh_outbox WHERE envelope_id = ?', env.id), 0);
  assert.equal(count('SELECT COUNT(*) FROM mesh_bodies'), 0, 'the last acknowledgement took the body');
});

test('an event for one peer keeps its body in its row; queuing it again for a peer that has it adds no reference', async () => {
  const outbox = new MeshOutbox(t.node.ns.store);
  await t.node.ns.store.write(() => outbox.addFor(['solo'], 'e-1', '{"id":"e-1"}', 1));
  assert.equal(count("SELECT COUNT(*) FROM mesh_outbox WHERE envelope_id = 'e-1' AND body != ''"), 1);
  assert.equal(count("SELECT COUNT(*) FROM mesh_bodies WHERE envelope_id = 'e-1'"), 0);
  await t.node.ns.store.write(() => outbox.addFor(['a', 'b'], 'e-2', '{"id":"e-2"}', 1));
  await t.node.ns.store.write(() => outbox.addFor(['a', 'b', 'c'], 'e-2', '{"id":"e-2"}', 1));
  assert.equal(count("SELECT refs FROM mesh_bodies WHERE envelope_id = 'e-2'"), 3, 'a and b had it: only c is new');
  for (const p of ['a', 'b', 'c']) await outbox.acknowledge(p, ['e-2']);
  assert.equal(count("SELECT COUNT(*) FROM mesh_bodies WHERE envelope_id = 'e-2'"), 0);
  // Acknowledged by another peer, or an id never queued: nothing changes.
  await outbox.acknowledge('a', ['e-1', 'e-none']);
  assert.equal(count("SELECT COUNT(*) FROM mesh_outbox WHERE envelope_id = 'e-1'"), 1);
  await outbox.acknowledge('solo', ['e-1']);
  assert.equal(count("SELECT COUNT(*) FROM mesh_outbox WHERE envelope_id = 'e-1'"), 0, 'its acknowledgement deleted the row');
  assert.equal(count("SELECT COUNT(*) FROM mesh_bodies WHERE envelope_id = 'e-1'"), 0, 'and took no shared body with it');
});

test('a row whose shared body is missing is dropped (logged), and the rows after it are still read', async () => {
  const outbox = new MeshOutbox(t.node.ns.store);
  await t.node.ns.store.write(() => {
    outbox.addFor(['x', 'y'], 'e-3', '{"id":"e-3"}', 1);
    outbox.addFor(['x', 'y'], 'e-4', '{"id":"e-4"}', 1);
    t.node.ns.store.db.prepare("DELETE FROM mesh_bodies WHERE envelope_id = 'e-3'").run();
  });
  const rows = outbox.peek('x', 0, 10);
  assert.deepEqual(
    rows.map((r) => r.envelopeId),
    ['e-4'],
  );
  await t.node.ns.store.write(() => undefined);
  assert.equal(count("SELECT COUNT(*) FROM mesh_outbox WHERE peer = 'x' AND envelope_id = 'e-3'"), 0, 'the unsendable row went');
});
