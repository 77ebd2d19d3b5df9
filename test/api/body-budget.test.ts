import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodyBudget } from '../../src/api/body-budget.js';

const settled = async (p: Promise<void>) => {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

test('bodies are read in order of arrival, within the budget; one that leaves while waiting lets the next go', async () => {
  const b = new BodyBudget(100);
  const a = b.take(60);
  assert.equal(await settled(a.ready), true);
  const big = b.take(80); // does not fit beside a
  const small = b.take(10); // would fit, but waits behind big: first come, first served
  assert.equal(await settled(big.ready), false);
  assert.equal(await settled(small.ready), false);
  assert.deepEqual(b.stats(), { inFlight: 60, max: 100, waiting: 2, peak: 60, timedOut: 0 });

  big.release(); // its client left before its turn
  assert.equal(await settled(small.ready), true, 'the next in line goes once the head left');
  assert.deepEqual(b.stats(), { inFlight: 70, max: 100, waiting: 0, peak: 70, timedOut: 0 });

  const huge = b.take(10_000); // more than the whole budget: takes all of it, when all of it is free
  assert.equal(await settled(huge.ready), false);
  a.release();
  small.release();
  small.release(); // twice: once
  assert.equal(await settled(huge.ready), true);
  assert.deepEqual(b.stats(), { inFlight: 100, max: 100, waiting: 0, peak: 100, timedOut: 0 });
  huge.release();
  assert.equal(b.stats().inFlight, 0);
});
