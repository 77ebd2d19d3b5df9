/**
 * Event ids (util/ids.ts) are UUID version 7 (RFC 9562) and sort in creation order: what the
 * log, the outbox, the recovery index and every peer's replay guard rely on. Checked digit by
 * digit against the milliseconds and the counter they encode, at the ends of the 48-bit range
 * and across a counter that overflows its millisecond.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdGenerator, uuidv7Time } from '../../src/util/ids.js';

const SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The milliseconds and counter an id should carry, as text. */
function expected(ms: number, counter: number): string {
  const h = ms.toString(16).padStart(12, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-7${counter.toString(16).padStart(3, '0')}-`;
}

test('ids carry their millisecond and counter digit for digit, version 7 and variant 10, across the whole 48-bit range', () => {
  for (const ms of [0, 1, 15, 16, 0xffffff, 0x1000000, 0x1000001, Date.UTC(2026, 11, 6, 14, 0, 0, 123), 2 ** 48 - 2]) {
    const gen = new IdGenerator();
    for (let c = 0; c < 20; c++) {
      const id = gen.next(ms);
      assert.match(id, SHAPE, `${id} (ms ${ms})`);
      assert.equal(id.slice(0, 19), expected(ms, c), `ms ${ms}, counter ${c}`);
      assert.equal(uuidv7Time(id), ms);
    }
  }
});

test('a millisecond holds 4,096 ids; the next one moves to the next millisecond; every id is new and they sort as made', () => {
  const gen = new IdGenerator();
  const ms = Date.UTC(2026, 11, 6);
  const ids = Array.from({ length: 5000 }, () => gen.next(ms));
  assert.equal(ids[4095]?.slice(0, 19), expected(ms, 0xfff));
  assert.equal(ids[4096]?.slice(0, 19), expected(ms + 1, 0));
  assert.equal(uuidv7Time(ids[4999] as string), ms + 1);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(new Set(ids).size, ids.length);
  // 640 ids use the random pool more than once (8 bytes each, 512 to a fill): the tails differ.
  assert.equal(new Set(ids.map((id) => id.slice(19))).size, ids.length);
  // A clock that steps back never makes an id sort before an earlier one.
  const back = gen.next(ms - 10);
  assert.ok(back > (ids[4999] as string), `${back} after ${ids[4999]}`);
});
