import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { HttpApp } from '../../src/api/http.js';
import { buildApi } from '../../src/api/server.js';
import { silentLogger } from '../../src/util/logger.js';
import { startTestNode } from '../helpers/node.js';

const TOKEN = 'test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let app: HttpApp;
let close: () => Promise<void>;

before(async () => {
  const t = await startTestNode();
  close = t.close;
  app = (await buildApi({ token: TOKEN }, { node: t.node, logger: silentLogger })).app;
});
after(async () => {
  await app.close();
  await close();
});

test('emit validates against the catalog and answers 400 naming the field', async () => {
  const bad = await app.inject({ method: 'POST', url: '/api/events', headers: auth, payload: { event: 'system.worker.crashed', payload: { worker: 'w' } } });
  assert.equal(bad.statusCode, 400);
  const body = bad.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'WEFT_VALIDATION');
  assert.match(body.error.message, /event 'system\.worker\.crashed' payload: field '\/error'/);
  const unknown = await app.inject({ method: 'POST', url: '/api/events', headers: auth, payload: { event: 'no.such.type' } });
  assert.equal(unknown.statusCode, 400);
  assert.equal((unknown.json() as { error: { code: string } }).error.code, 'WEFT_UNKNOWN_EVENT_TYPE');
  const ok = await app.inject({ method: 'POST', url: '/api/events', headers: auth, payload: { event: 'system.worker.crashed', payload: { worker: 'w', error: 'e', restarts: 0 } } });
  assert.equal(ok.statusCode, 201);
  const many = await app.inject({
    method: 'POST',
    url: '/api/events',
    headers: auth,
    payload: { events: [{ event: 'system.worker.crashed', payload: { worker: 'a', error: 'e', restarts: 0 } }, { event: 'system.worker.crashed', payload: { worker: 'b', error: 'e', restarts: 0 } }] },
  });
  assert.equal(many.statusCode, 201);
  assert.equal((many.json() as { ids: string[] }).ids.length, 2);
});

test('query strings are validated and coerced', async () => {
  const r = await app.inject({ method: 'GET', url: '/api/notifications?level=9', headers: auth });
  assert.equal(r.statusCode, 400);
  assert.match((r.json() as { error: { message: string } }).error.message, /querystring: field '\/level'/);
  const ok = await app.inject({ method: 'GET', url: '/api/notifications?level=1&limit=5', headers: auth });
  assert.equal(ok.statusCode, 200);
  // A parameter the route does not take (the notification's own field names, say) is refused,
  // not ignored into a list of everything.
  for (const q of ['eventType=system.worker.crashed', 'minLevel=3', 'agent_status=resolved']) {
    const u = await app.inject({ method: 'GET', url: `/api/notifications?${q}`, headers: auth });
    assert.equal(u.statusCode, 400, q);
    assert.match((u.json() as { error: { message: string } }).error.message, /^querystring: unknown parameter '\w+'; this route takes level, domain, humanStatus, agentStatus, visibility, type, since, cursor, limit$/);
  }
  const nf = await app.inject({ method: 'GET', url: '/api/notifications/424242', headers: auth });
  assert.equal(nf.statusCode, 404);
  assert.equal((nf.json() as { error: { code: string } }).error.code, 'WEFT_NOT_FOUND');
});

test('the OpenAPI document describes every route from the same schemas', async () => {
  const r = await app.inject({ method: 'GET', url: '/openapi.json', headers: auth });
  const doc = r.json() as { openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>> };
  assert.equal(doc.openapi, '3.1.0');
  assert.ok(doc.paths['/api/notifications']?.get?.parameters?.some((p) => p.name === 'humanStatus'));
  assert.ok(doc.paths['/api/notifications/{id}/resolve']?.post);
  assert.ok(doc.paths['/api/events']?.post);
});

test('event trace shows the causation tree', async () => {
  const r = await app.inject({ method: 'POST', url: '/api/events', headers: auth, payload: { event: 'system.worker.crashed', payload: { worker: 't', error: 'e', restarts: 0 } } });
  const { id } = r.json() as { id: string };
  const child = await app.inject({ method: 'POST', url: '/api/events', headers: auth, payload: { event: 'system.worker.crashed', causationId: id, payload: { worker: 't', error: 'again', restarts: 1 } } });
  assert.equal(child.statusCode, 201);
  const tr = await app.inject({ method: 'GET', url: `/api/events/${id}/trace`, headers: auth });
  const t = tr.json() as { root: { id: string; children: Array<{ id: string }> } };
  assert.equal(t.root.id, id);
  assert.equal(t.root.children[0]?.id, (child.json() as { id: string }).id);
});

test('a body over the API limit is 413 WEFT_TOO_LARGE naming the limit, not a code of the HTTP framework', async () => {
  const r = await app.inject({ method: 'POST', url: '/api/events', headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify({ event: 'system.worker.crashed', payload: { worker: 'w', error: 'x'.repeat(9 * 1024 * 1024), restarts: 0 } }) });
  assert.equal(r.statusCode, 413);
  assert.deepEqual(r.json(), { error: { code: 'WEFT_TOO_LARGE', message: 'the request body is larger than the API takes (8388608 bytes)' } });
});
