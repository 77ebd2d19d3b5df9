/**
 * The pacer of background work (util/pacer.ts): on an idle node the work runs slice after slice
 * without waiting; while the node is busy (its activity counter moves) the slices are spaced so
 * the work keeps its share of the loop; slices of one pacer never overlap; and work on a loop
 * saturated by others still gets done.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { Pacer } from '../../src/util/pacer.js';

/** Busy-waits until `until` (a slice doing real synchronous work). */
function spin(until: number): void {
  while (performance.now() < until) {
    // work
  }
}

test('an idle node runs the slices back to back; a busy one spaces them to keep the share', async () => {
  let busy = false;
  let n = 0;
  // Busy: the counter moves every time it is read (something commits all the time); idle: never.
  const pacer = new Pacer(() => (busy ? ++n : n), { sliceMs: 2, share: 0.1 });
  let t0 = performance.now();
  for (let i = 0; i < 20; i++) await pacer.slice((until) => spin(until));
  const idle = performance.now() - t0;

  busy = true;
  t0 = performance.now();
  for (let i = 0; i < 20; i++) await pacer.slice((until) => spin(until));
  const busyMs = performance.now() - t0;
  // 20 × 2 ms of work at a 10 % share cannot take less than 19 gaps of 18 ms (timers may fire a
  // fraction of a millisecond early: 10 % margin).
  assert.ok(busyMs >= 0.9 * 19 * 18, `busy: ${busyMs.toFixed(0)} ms for 20 slices`);
  // Idle, the same work is not spaced out (a wide margin: a loaded machine still passes).
  assert.ok(idle < busyMs / 3, `idle ${idle.toFixed(0)} ms vs busy ${busyMs.toFixed(0)} ms`);
});

test('slices of one pacer never overlap, and each gets a deadline of its own', async () => {
  const pacer = new Pacer(() => 0, { sliceMs: 3 });
  let inside = 0;
  let most = 0;
  const deadlines: number[] = [];
  const run = async () => {
    for (let i = 0; i < 5; i++) {
      await pacer.slice((until) => {
        inside++;
        most = Math.max(most, inside);
        deadlines.push(until);
        spin(Math.min(until, performance.now() + 1));
        inside--;
      });
      await new Promise((r) => setImmediate(r));
    }
  };
  await Promise.all([run(), run(), run()]);
  assert.equal(most, 1);
  assert.equal(deadlines.length, 15);
  assert.equal(new Set(deadlines).size, 15);
});

test('a loop saturated by other work gets longer slices, so the work still keeps its share', async () => {
  let activity = 0;
  const pacer = new Pacer(() => activity, { sliceMs: 2, share: 0.1, maxSliceMs: 10 });
  await pacer.slice((until) => spin(until));
  // The next slice is asked for, then something else holds the loop for 90 ms before its turn.
  let budget = 0;
  const next = pacer.slice((until) => {
    budget = until - performance.now();
  });
  activity++;
  spin(performance.now() + 90);
  await next;
  // 90 ms of others' work earns 10 ms at a 10 % share (capped at maxSliceMs).
  assert.ok(budget > 5, `budget ${budget.toFixed(1)} ms`);
  assert.ok(budget <= 10);

  // An idle pause between two passes (nobody asked for a slice) earns nothing.
  await new Promise((r) => setTimeout(r, 100));
  await pacer.slice((until) => {
    budget = until - performance.now();
  });
  // (Without that rule it would be the whole 10 ms; below 9 leaves room for a loaded machine's late immediates.)
  assert.ok(budget < 9, `budget after an idle pause ${budget.toFixed(1)} ms`);
});

test('work done outside a slice on its behalf (charge) delays the next slice under load', async () => {
  let busy = false;
  let n = 0;
  const pacer = new Pacer(() => (busy ? ++n : n), { sliceMs: 1, share: 0.5 });
  await pacer.slice(() => undefined);
  pacer.charge(40);
  busy = true;
  const t0 = performance.now();
  await pacer.slice(() => undefined);
  // 40 ms charged at a 50 % share: 40 ms of waiting while the node is busy.
  assert.ok(performance.now() - t0 >= 36, `waited ${(performance.now() - t0).toFixed(0)} ms`);
});

test('a loop kept busy by work that commits nothing (a long batch before its commit) still gets the share, not half', async () => {
  // Nothing ever commits (the counter never moves), while another task holds the loop in 3 ms
  // turns, as a peer's large batch does before its commit.
  const pacer = new Pacer(() => 0, { sliceMs: 2, share: 0.1, maxSliceMs: 2 });
  let running = true;
  const other = () => {
    spin(performance.now() + 3);
    if (running) setImmediate(other);
  };
  setImmediate(other);
  let inSlices = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 400) {
    await pacer.slice((until) => {
      const s = performance.now();
      spin(until);
      inSlices += performance.now() - s;
    });
  }
  const wall = performance.now() - t0;
  running = false;
  // 10 % of the loop, with room for timers that fire late; a slice in every gap was ~40 %.
  assert.ok(inSlices / wall < 0.2, `slices took ${((inSlices / wall) * 100).toFixed(0)} % of ${wall.toFixed(0)} ms`);
  assert.ok(inSlices > 0, 'the work still ran');
});
