import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import { createNode } from '../../src/node/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { startTestNode } from '../helpers/node.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const TODO = 'domain.software-development.planning.todo.created';

test('an emit answers what became of the event: applied, or dropped as a duplicate of its idempotency key', async () => {
  const t = await startTestNode();
  const { app } = await buildApi({ token: TOKEN }, { node: t.node, logger: silentLogger });
  try {
    const emit = async (payload: Record<string, unknown>) => {
      await t.node.idle();
      const r = await app.inject({ method: 'POST', url: '/api/events', headers: auth, payload: { event: TODO, payload } });
      assert.equal(r.statusCode, 201);
      return r.json() as { id: string; envelope: { id: string }; outcome: { state: string; by?: string } };
    };
    const first = await emit({ slug: 'twice', title: 'Once' });
    assert.deepEqual(first.outcome, { state: 'applied' });
    assert.equal(first.envelope.id, first.id);
    const second = await emit({ slug: 'twice', title: 'Once more' });
    assert.deepEqual(second.outcome, { state: 'dropped', by: 'dedup' });
    assert.notEqual(second.id, first.id, 'the duplicate is an event of its own, stored');
    assert.ok(t.node.ns.log.get(second.id), 'the duplicate is in the log');
    const third = await emit({ slug: 'other', title: 'New' });
    assert.deepEqual(third.outcome, { state: 'applied' });

    // A batch names the events a stage dropped, and says it was applied at once.
    await t.node.idle();
    const many = await app.inject({
      method: 'POST',
      url: '/api/events',
      headers: auth,
      payload: { events: [{ event: TODO, payload: { slug: 'batch-new', title: 'a' } }, { event: TODO, payload: { slug: 'twice', title: 'b' } }] },
    });
    assert.equal(many.statusCode, 201);
    const body = many.json() as { ids: string[]; queued: boolean; dropped: Array<{ id: string; by: string }>; failed: unknown[] };
    assert.equal(body.ids.length, 2);
    assert.equal(body.queued, false);
    assert.deepEqual(body.dropped, [{ id: body.ids[1], by: 'dedup' }]);
    assert.deepEqual(body.failed, []);
  } finally {
    await app.close();
    await t.close();
  }
});

test('an emit the pipeline cannot apply at once is reported queued; a stage that drops it, or a cartridge that fails on it, is named', async () => {
  const t = tempDir('weft-node-');
  // Not started: the pipeline runs nothing yet, so the emit goes to the bus.
  const node = await createNode({
    dataDir: t.dir,
    computer: 'test',
    cartridges: (d) => [
      { name: 'gate', process: (e) => (e.entity === 'blocked' ? null : e) },
      {
        name: 'thrower',
        process: (e) => {
          if (e.entity === 'boom') throw new Error('no boom today');
          return e;
        },
      },
      d.dedup,
      d.projection,
    ],
  });
  try {
    const [queued] = await node.emitManyReported([{ event: TODO, payload: { slug: 'q', title: 'q' } }]);
    assert.deepEqual(queued?.outcome, { state: 'queued' });
    await node.start();
    assert.equal(await node.idle(), true);
    const [blocked, passed] = await node.emitManyReported([
      { event: TODO, entity: 'blocked', payload: { slug: 'b', title: 'b' } },
      { event: TODO, payload: { slug: 'p', title: 'p' } },
    ]);
    assert.deepEqual(blocked?.outcome, { state: 'dropped', by: 'gate' });
    assert.deepEqual(passed?.outcome, { state: 'applied' });
    assert.equal(await node.idle(), true);
    const [boom, after] = await node.emitManyReported([
      { event: TODO, entity: 'boom', payload: { slug: 'x', title: 'x' } },
      { event: TODO, payload: { slug: 'y', title: 'y' } },
    ]);
    assert.deepEqual(boom?.outcome, { state: 'failed', by: 'thrower', error: 'no boom today' });
    assert.deepEqual(after?.outcome, { state: 'applied' });
    assert.equal(node.ns.deadLetters.list()[0]?.eventId, boom?.envelope.id);
  } finally {
    await node.stop();
    t.cleanup();
  }
});
