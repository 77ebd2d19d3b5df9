/** Correlation in isolation: bursts and failure cascades, exactly once per window, across restarts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { correlation } from '../../src/cartridges/index.js';
import { BURST_DETECTED, FAILURE_CASCADE } from '../../src/catalog/index.js';
import type { Envelope } from '../../src/envelope/index.js';
import { crash, type Harness, harness, TODO, todo } from './harness.js';

const count = (h: Harness, type: string) => h.emitted.filter((e) => e.event === type).length;

async function feed(
  h: Harness,
  c: ReturnType<typeof correlation>,
  n: number,
  make: (i: number) => Envelope,
  stepMs: number,
) {
  const envs: Envelope[] = [];
  for (let i = 0; i < n; i++) {
    envs.push(make(i));
    h.clock.advance(stepMs);
  }
  await h.runMany(c, envs);
}

describe('correlation: bursts', () => {
  it('reports a burst exactly once per window, and again in the next window', async () => {
    const h = await harness();
    try {
      const corr = correlation({ burst: { windowMs: 60_000, threshold: 50 }, cascade: false });
      await feed(h, corr, 40, (i) => h.make(todo(`a${i}`)), 100);
      assert.equal(count(h, BURST_DETECTED), 0, 'below the threshold');
      await feed(h, corr, 300, (i) => h.make(todo(`b${i}`)), 100); // 30 s more, same window
      assert.equal(count(h, BURST_DETECTED), 1);
      const burst = h.emitted.find((e) => e.event === BURST_DETECTED);
      assert.equal(burst?.payload.eventType, TODO);
      assert.equal(burst?.payload.threshold, 50);
      assert.ok(burst?.causationId, 'caused by the event that crossed the threshold');
      h.clock.advance(60_000);
      await feed(h, corr, 100, (i) => h.make(todo(`c${i}`)), 100);
      assert.equal(count(h, BURST_DETECTED), 2, 'a new window reports again');
    } finally {
      await h.close();
    }
  });

  it('sees a burst that straddles a window boundary', async () => {
    const h = await harness();
    try {
      const corr = correlation({ burst: { windowMs: 60_000, threshold: 50 }, cascade: false });
      h.clock.advance(50_000); // 10 s before the bucket ends
      await feed(h, corr, 60, (i) => h.make(todo(`s${i}`)), 300); // 18 s, half on each side
      assert.equal(count(h, BURST_DETECTED), 1);
    } finally {
      await h.close();
    }
  });

  it('remembers its windows across a restart: no second report in the same window', async () => {
    const h = await harness();
    try {
      await feed(
        h,
        correlation({ burst: { threshold: 20 }, cascade: false }),
        30,
        (i) => h.make(todo(`r${i}`)),
        10,
      );
      assert.equal(count(h, BURST_DETECTED), 1);
      await h.reopen();
      await feed(
        h,
        correlation({ burst: { threshold: 20 }, cascade: false }),
        30,
        (i) => h.make(todo(`q${i}`)),
        10,
      );
      assert.equal(count(h, BURST_DETECTED), 1);
    } finally {
      await h.close();
    }
  });

  it('never counts the events it synthesizes, and honours per-type settings', async () => {
    const h = await harness();
    try {
      const corr = correlation({
        burst: { threshold: 5, perType: { 'domain.software-development.*': false } },
        cascade: false,
      });
      const synthetic = () =>
        h.make({
          event: BURST_DETECTED,
          payload: {
            eventType: 'x.y',
            count: 1,
            threshold: 1,
            windowMs: 1,
            windowStart: 'a',
            detectedAt: 'b',
          },
        });
      await feed(h, corr, 50, synthetic, 1);
      await feed(h, corr, 50, (i) => h.make(todo(`p${i}`)), 1);
      assert.equal(count(h, BURST_DETECTED), 0);
      assert.equal(h.ns.store.db.prepare('SELECT COUNT(*) FROM correlation_counts').pluck().get(), 0);
    } finally {
      await h.close();
    }
  });

  it('prunes expired windows', async () => {
    const h = await harness();
    try {
      const corr = correlation({
        burst: { windowMs: 1000, threshold: 1000 },
        cascade: { windowMs: 1000 },
        pruneEvery: 1,
      });
      await feed(h, corr, 20, (i) => h.make(crash(`w${i}`)), 500);
      const rows = () =>
        h.ns.store.db.prepare('SELECT COUNT(*) FROM correlation_counts').pluck().get() as number;
      assert.ok(rows() <= 3, `${rows()} buckets kept`);
      const failures = h.ns.store.db
        .prepare('SELECT COUNT(*) FROM correlation_failures')
        .pluck()
        .get() as number;
      assert.ok(failures <= 3, `${failures} failure rows kept`);
    } finally {
      await h.close();
    }
  });
});

describe('correlation: failure cascades', () => {
  it('reports failures across several entities exactly once per window', async () => {
    const h = await harness();
    try {
      const corr = correlation({
        burst: false,
        cascade: { windowMs: 300_000, minEntities: 3, minComputers: 2 },
      });
      await feed(h, corr, 5, () => h.make(crash('indexer')), 1000); // one entity failing repeatedly
      assert.equal(count(h, FAILURE_CASCADE), 0);
      await feed(h, corr, 2, (i) => h.make(crash(`w${i}`)), 1000);
      assert.equal(count(h, FAILURE_CASCADE), 1);
      const c = h.emitted.find((e) => e.event === FAILURE_CASCADE);
      assert.deepEqual(c?.payload.entities, [
        'system:worker=indexer',
        'system:worker=w0',
        'system:worker=w1',
      ]);
      assert.equal(c?.payload.failures, 7);
      await feed(h, corr, 20, (i) => h.make(crash(`more${i}`)), 1000);
      assert.equal(count(h, FAILURE_CASCADE), 1, 'not again inside the window');
      h.clock.advance(300_000);
      await feed(h, corr, 3, (i) => h.make(crash(`next${i}`)), 1000);
      assert.equal(count(h, FAILURE_CASCADE), 2);
      // Successes and other events do not count.
      await h.reopen();
      h.clock.advance(300_000);
      await feed(h, corr, 10, (i) => h.make(todo(`ok${i}`)), 1000);
      assert.equal(count(h, FAILURE_CASCADE), 2);
    } finally {
      await h.close();
    }
  });

  it('reports one entity failing on several computers', async () => {
    const h = await harness();
    try {
      const corr = correlation({
        burst: false,
        cascade: { minEntities: 5, minComputers: 2, minFailures: 3 },
      });
      await feed(h, corr, 2, () => h.make(crash('sync')), 1000);
      await feed(h, corr, 1, () => h.make(crash('sync'), { sourceComputer: 'desktop' }), 1000);
      assert.equal(count(h, FAILURE_CASCADE), 1);
      assert.deepEqual(h.emitted.find((e) => e.event === FAILURE_CASCADE)?.payload.computers, [
        'desktop',
        'laptop',
      ]);
    } finally {
      await h.close();
    }
  });
});
