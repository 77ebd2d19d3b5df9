import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { Catalog, createDefaultCatalog } from '../../src/catalog/index.js';
import { DuplicateEventTypeError, UnknownEventTypeError } from '../../src/errors/index.js';

test('registering a type twice is refused, naming the type', () => {
  const c = createDefaultCatalog();
  assert.throws(
    () => c.register({ type: 'system.worker.crashed', description: 'x', domain: 'system', payload: Type.Object({}), defaultLevel: 1 }),
    (e: DuplicateEventTypeError) => e instanceof DuplicateEventTypeError && e.message.includes("'system.worker.crashed'"),
  );
});

test('the initial types are registered', () => {
  const types = createDefaultCatalog().list().map((e) => e.type);
  for (const t of [
    'system.daemon.restarted',
    'system.worker.crashed',
    'system.cartridge.failed',
    'domain.software-development.planning.todo.created',
    'domain.software-development.planning.todo.dor_assessed',
    'domain.software-development.planning.todo.ready',
    'domain.software-development.planning.todo.closed',
  ]) {
    assert.ok(types.includes(t), `${t} registered`);
  }
});

test('an unknown type and a bad payload are clear errors', () => {
  const c = createDefaultCatalog();
  assert.throws(() => c.require('no.such.type'), UnknownEventTypeError);
  assert.throws(
    () => c.validatePayload('domain.software-development.planning.todo.created', { slug: 'x' }),
    /event 'domain.software-development.planning.todo.created' payload: field '\/title'/,
  );
});

test('idempotency key is the type plus the declared fields in order', () => {
  const c = createDefaultCatalog();
  assert.equal(
    c.idempotencyKey('domain.software-development.planning.todo.dor_assessed', { slug: 's', score: 3, verdict: 'blocked' }),
    'domain.software-development.planning.todo.dor_assessed:s:3:blocked',
  );
  assert.equal(c.idempotencyKey('system.worker.crashed', { worker: 'w' }), undefined);
});

test('lifecycle updates without a group key is refused at registration', () => {
  const c = new Catalog();
  assert.throws(
    () => c.register({ type: 'a.b', description: '', domain: 'a', payload: Type.Object({}), defaultLevel: 0, lifecycle: { updates: true } }),
    /groupKey/,
  );
});

test('export gives JSON Schema for the envelope and every type', () => {
  const doc = createDefaultCatalog().exportJsonSchema() as { envelope: { properties: object }; types: Record<string, { payload: { properties: object } }> };
  assert.ok('payload' in doc.envelope.properties);
  const t = doc.types['domain.software-development.planning.todo.created'];
  assert.ok(t && 'slug' in t.payload.properties);
  assert.doesNotThrow(() => JSON.stringify(doc));
});

test("the node's control types are flagged: what only the node produces, not what producers and cartridges may emit", () => {
  const c = createDefaultCatalog();
  for (const t of ['cartridge.published', 'cartridge.installed', 'system.cartridge.failed', 'system.burst.detected', 'mesh.event.rejected', 'mesh.recovery.cartridge', 'transport.noprov', 'mirror.stalled', 'domains.cartridge.installed', 'privacy.summary.shared']) {
    assert.equal(c.isControl(t), true, t);
  }
  for (const t of ['mesh.test.ping', 'domains.alert', 'domain.software-development.planning.todo.created', 'sovereign.graph_update', 'signal.ingest.received', 'no.such.type']) {
    assert.equal(c.isControl(t), false, t);
  }
});
