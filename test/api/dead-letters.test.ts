import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deadLetterRoutes } from '../../src/api/node-routes.js';
import { buildApi } from '../../src/api/server.js';
import { createNode } from '../../src/node/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const TODO = 'domain.software-development.planning.todo.created';

test('the events a cartridge failed on can be listed, filtered, paged and read back through the API', async () => {
  const t = tempDir('weft-dead-letters-');
  const node = await createNode({
    dataDir: t.dir,
    computer: 'test',
    cartridges: (d) => [
      {
        name: 'thrower',
        process: (e) => {
          if (e.entity?.startsWith('boom')) throw new Error(`no ${e.entity} today`);
          return e;
        },
      },
      d.dedup,
      d.projection,
    ],
  });
  const { app } = await buildApi({ token: TOKEN }, { node, logger: silentLogger, extraRoutes: [deadLetterRoutes({ node })] });
  try {
    await node.start();
    const get = async (url: string) => {
      const r = await app.inject({ method: 'GET', url, headers: auth });
      return { status: r.statusCode, body: r.json() as Record<string, unknown> };
    };
    const empty = await get('/api/deadletters');
    assert.deepEqual(
      { ...empty.body, kept: undefined },
      { items: [], nextCursor: null, total: 0, kept: undefined },
    );

    const failed = [];
    for (let i = 0; i < 3; i++) {
      const [r] = await node.emitManyReported([
        { event: TODO, entity: `boom-${i}`, payload: { slug: `s${i}`, title: 't' } },
      ]);
      assert.equal(r?.outcome.state, 'failed');
      failed.push(r?.envelope.id);
    }
    await node.emitManyReported([{ event: TODO, payload: { slug: 'fine', title: 'fine' } }]);
    await node.idle();

    const page1 = await get('/api/deadletters?limit=2');
    assert.equal(page1.status, 200);
    const items = page1.body.items as Array<{
      id: number;
      eventId: string;
      cartridge: string;
      error: string;
      envelope: { id: string };
    }>;
    assert.deepEqual(
      items.map((i) => i.eventId),
      [failed[2], failed[1]],
      'newest first',
    );
    assert.equal(items[0]?.cartridge, 'thrower');
    assert.match(items[0]?.error ?? '', /no boom-2 today/);
    assert.equal(page1.body.total, 3);
    assert.equal(page1.body.kept, 10_000);
    const page2 = await get(`/api/deadletters?limit=2&cursor=${page1.body.nextCursor}`);
    assert.deepEqual(
      (page2.body.items as Array<{ eventId: string }>).map((i) => i.eventId),
      [failed[0]],
    );
    assert.equal(page2.body.nextCursor, null);

    assert.equal(((await get('/api/deadletters?cartridge=other')).body.items as unknown[]).length, 0);
    assert.equal(
      ((await get(`/api/deadletters?type=${TODO}&cartridge=thrower`)).body.items as unknown[]).length,
      3,
    );

    const one = await get(`/api/deadletters/${items[0]?.id}`);
    assert.equal(one.status, 200);
    assert.equal((one.body.envelope as { id: string }).id, failed[2]);
    assert.equal((one.body.envelope as { entity: string }).entity, 'boom-2');
    const missing = await get('/api/deadletters/999999');
    assert.equal(missing.status, 404);
    assert.equal((missing.body.error as { code: string }).code, 'WEFT_NOT_FOUND');
    assert.equal((await get('/api/deadletters?limit=0')).status, 400);
  } finally {
    await app.close();
    await node.stop();
    t.cleanup();
  }
});
