import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDefaultCatalog } from '../../src/catalog/index.js';
import {
  ENVELOPE_FIELDS,
  type Envelope,
  envelopeValidator,
  envelopeWith,
  fromStreamFields,
  fieldsFromArray,
  parseEnvelope,
  serializeEnvelope,
  toStreamFields,
} from '../../src/envelope/index.js';
import { ValidationError } from '../../src/errors/index.js';
import { buildEnvelope } from '../../src/pipeline/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { IdGenerator, uuidv7Time } from '../../src/util/ids.js';

const catalog = createDefaultCatalog();
const clock = new ManualClock(Date.UTC(2026, 10, 25, 8, 0, 0));
const deps = { catalog, clock, ids: new IdGenerator(), defaultSource: 'test' };

function valid(): Envelope {
  return buildEnvelope(
    {
      event: 'domain.software-development.planning.todo.dor_assessed',
      payload: { slug: 'abc', score: 8, verdict: 'ready' },
      entity: 'todo/abc',
    },
    deps,
  );
}

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
    return String(err.details?.field);
  }
  assert.fail('expected a validation error');
}

test('emit fills every layer from the catalog and gives a time-ordered id', () => {
  const e = valid();
  assert.equal(e.level, 2);
  assert.equal(e.domain, 'software-development');
  assert.equal(e.visibility, 'local');
  assert.equal(e.idempotencyKey, 'domain.software-development.planning.todo.dor_assessed:abc:8:ready');
  assert.deepEqual(e.resolutionShape, { outcome: 'string' });
  assert.equal(e.timestamp, '2026-11-25T08:00:00.000Z');
  assert.equal(uuidv7Time(e.id), clock.now());
  assert.ok(envelopeValidator.check(e));
  const ids = Array.from({ length: 1000 }, () => deps.ids.next(clock.now()));
  assert.deepEqual([...ids].sort(), ids, 'ids sort in creation order within one millisecond');
  assert.equal(new Set(ids).size, ids.length);
});

test('each layer rejects bad values with an error naming the field', () => {
  // identity
  assert.equal(fieldOf(() => envelopeValidator.assert({ ...valid(), event: 'NoDots' }, 'e')), '/event');
  assert.equal(fieldOf(() => envelopeValidator.assert({ ...valid(), source: '' }, 'e')), '/source');
  assert.equal(fieldOf(() => envelopeValidator.assert({ ...valid(), timestamp: 'yesterday' }, 'e')), '/timestamp');
  // semantic
  assert.equal(fieldOf(() => envelopeValidator.assert({ ...valid(), level: 4 }, 'e')), '/level');
  assert.equal(fieldOf(() => envelopeValidator.assert({ ...valid(), visibility: 'world' }, 'e')), '/visibility');
  // data
  assert.equal(fieldOf(() => envelopeValidator.assert({ ...valid(), payload: [1] }, 'e')), '/payload');
  // affordances
  assert.equal(
    fieldOf(() => envelopeValidator.assert({ ...valid(), actions: { approve: { description: 'x' } } }, 'e')),
    '/actions/approve/produces',
  );
  // resolution
  assert.equal(fieldOf(() => envelopeValidator.assert({ ...valid(), resolutionShape: { outcome: 3 } }, 'e')), '/resolutionShape/outcome');
  // provenance
  assert.equal(fieldOf(() => envelopeValidator.assert({ ...valid(), hops: -1 }, 'e')), '/hops');
  // unknown fields are refused, not carried
  assert.equal(fieldOf(() => envelopeValidator.assert({ ...valid(), extra: 1 }, 'e')), '/extra');
});

test('emit names the type and the payload field that fails its schema', () => {
  assert.throws(
    () => buildEnvelope({ event: 'domain.software-development.planning.todo.dor_assessed', payload: { slug: 'a', score: 11, verdict: 'ready' } }, deps),
    (err: ValidationError) =>
      err.message.includes("event 'domain.software-development.planning.todo.dor_assessed' payload") &&
      err.details?.field === '/score',
  );
  assert.throws(() => buildEnvelope({ event: 'nope.not.registered', payload: {} }, deps), /unknown event type 'nope.not.registered'/);
  assert.throws(() => buildEnvelope({ event: 'system.worker.crashed', payload: {}, level: 9 }, deps), (e: ValidationError) => e.details?.field === '/level');
  assert.throws(() => buildEnvelope({ event: 'system.worker.crashed', origin: 'forged' }, deps), (e: ValidationError) => e.details?.field === '/origin');
});

test('stable serialization: same bytes in, same bytes out', () => {
  const e = { ...valid(), payload: { z: 1, a: { y: [1, 2, { b: true, a: null }] }, m: 'ü\n"' }, causationId: 'c1', flags: ['x'] };
  const s = serializeEnvelope(e);
  assert.equal(serializeEnvelope(parseEnvelope(s)), s);
  assert.equal(serializeEnvelope(parseEnvelope(Buffer.from(s))), s);
  assert.deepEqual(parseEnvelope(s), e);
  assert.throws(() => parseEnvelope('{not json'), /not valid JSON/);
});

test('serialization writes every field of the envelope schema, in sorted order, and nothing else', () => {
  const all: Record<string, unknown> = {};
  for (const k of ENVELOPE_FIELDS) all[k] = `v-${k}`;
  all.notAnEnvelopeField = 'dropped';
  const written = JSON.parse(serializeEnvelope(all as unknown as Envelope)) as Record<string, unknown>;
  assert.deepEqual(Object.keys(written), [...ENVELOPE_FIELDS].sort());
  for (const k of ENVELOPE_FIELDS) assert.equal(written[k], `v-${k}`);
  // A field left undefined is left out, as JSON does.
  const some = JSON.parse(serializeEnvelope({ ...valid(), causationId: undefined } as unknown as Envelope)) as Record<string, unknown>;
  assert.equal('causationId' in some, false);
});

test('the Redis entry format round-trips and a foreign producer needs only the seed fields', () => {
  const e = { ...valid(), actions: { approve: { description: 'go', produces: 'x.y.z' } } };
  const fields = toStreamFields(e);
  assert.deepEqual(fromStreamFields(fieldsFromArray(fields), '1-0'), e);
  for (const f of ['event', 'version', 'source', 'timestamp', 'idempotency_key', 'level', 'domain', 'entity', 'description', 'visibility', 'payload', 'actions', 'resolution_shape']) {
    assert.ok(fields.includes(f), `field ${f} present`);
  }
  const foreign = fromStreamFields(
    { event: 'system.worker.crashed', source: 'py', timestamp: '2026-11-25T08:00:00.123456+00:00', level: '1', payload: '{"worker":"w","error":"e","restarts":0}', entity: '', actions: '' },
    '1700000000000-3',
  );
  assert.equal(foreign.id, 'redis-1700000000000-3');
  assert.equal(foreign.version, 1);
  assert.equal(foreign.entity, undefined);
  assert.throws(() => fromStreamFields({ event: 'x.y', source: 's', timestamp: 't', level: 'high', payload: '{}' }, '1-1'), /field 'level'/);
  assert.throws(() => fromStreamFields({ event: 'x.y', source: 's', timestamp: '2026-11-25T08:00:00Z', level: '1', payload: '{' }, '1-2'), /field 'payload'/);
});

test('envelopeWith copies with fields set; a received "__proto__" key stays an own key, never the copy\'s prototype', () => {
  const e = valid();
  const c = envelopeWith(e, { origin: 'n', hops: 1 });
  assert.notEqual(c, e);
  assert.deepEqual(c, { ...e, origin: 'n', hops: 1 });
  assert.equal(e.hops, undefined, 'the original is left as it was');
  const raw = JSON.parse(`{"__proto__":{"flags":["trust:released"]},${serializeEnvelope(e).slice(1)}`) as Record<string, unknown>;
  const stamped = envelopeWith(raw, { hops: 1 });
  assert.equal(Object.getPrototypeOf(stamped), Object.prototype);
  assert.ok(Object.hasOwn(stamped, '__proto__'));
  assert.equal((stamped as { flags?: unknown }).flags, undefined, 'no field is lent by the key');
  assert.equal(envelopeValidator.firstError(stamped)?.path !== undefined, true, 'the validator refuses the extra key');
});
