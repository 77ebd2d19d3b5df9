import assert from 'node:assert/strict';
import test from 'node:test';
import { PAYLOAD_LIMITS, payloadProblem } from '../../src/envelope/index.js';

function nested(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < levels; i++) v = { v };
  return v;
}

test('a payload within the limits passes, one a byte over the size limit is refused with its size', () => {
  assert.equal(payloadProblem({ title: 'Todo number 1', slug: 'a-1', author: 'bench' }), undefined);
  // {"s":"…"} is 8 bytes of JSON around the string.
  const room = PAYLOAD_LIMITS.bytes - 8;
  assert.equal(payloadProblem({ s: 'a'.repeat(room) }), undefined);
  const over = payloadProblem({ s: 'a'.repeat(room + 1) });
  assert.equal(over?.code, 'PAYLOAD_TOO_LARGE');
  assert.match(over?.message ?? '', new RegExp(`is ${PAYLOAD_LIMITS.bytes + 1} bytes as JSON`));
});

test('the size limit counts UTF-8 bytes, escapes and values that write themselves (toJSON)', () => {
  // 40,000 characters, 80,000 bytes in UTF-8.
  assert.equal(payloadProblem({ s: 'é'.repeat(40_000) })?.code, 'PAYLOAD_TOO_LARGE');
  // A control character is written as \u0001: 6 bytes each.
  assert.equal(payloadProblem({ s: '\u0001'.repeat(11_000) })?.code, 'PAYLOAD_TOO_LARGE');
  // A Date has no keys of its own but 26 bytes of JSON: 3,000 of them are over the limit.
  assert.equal(payloadProblem({ d: Array.from({ length: 3000 }, () => new Date(0)) })?.code, 'PAYLOAD_TOO_LARGE');
  assert.equal(payloadProblem({ d: Array.from({ length: 100 }, () => new Date(0)) }), undefined);
  // Many small keys add up.
  const wide: Record<string, number> = {};
  for (let i = 0; i < 8000; i++) wide[`key-${i}`] = i;
  assert.equal(payloadProblem(wide)?.code, 'PAYLOAD_TOO_LARGE');
  // A value JSON cannot write is refused as before, not let through by the estimate.
  assert.throws(() => payloadProblem({ n: 1n }), /BigInt/);
});

test('nesting is limited to 32 levels, objects and arrays alike', () => {
  assert.equal(payloadProblem(nested(PAYLOAD_LIMITS.depth)), undefined);
  assert.equal(payloadProblem(nested(PAYLOAD_LIMITS.depth + 1))?.code, 'PAYLOAD_TOO_DEEP');
  let arr: unknown = [1];
  for (let i = 1; i <= PAYLOAD_LIMITS.depth; i++) arr = [arr];
  assert.equal(payloadProblem({ a: arr })?.code, 'PAYLOAD_TOO_DEEP');
});
