/** Enrichment in isolation: per-entity history from running counters, kept across restarts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type EntityContext, enrichment } from '../../src/cartridges/index.js';
import { crash, harness, todo } from './harness.js';

const ctxOf = (e: { context?: Record<string, unknown> } | null) =>
  e?.context?.entity as EntityContext | undefined;

describe('enrichment', () => {
  it('tells how many times an entity failed before and when it last succeeded', async () => {
    const h = await harness();
    try {
      const enrich = enrichment();
      const first = await h.run(enrich, h.make(crash('indexer', { entity: 'worker/indexer' })));
      assert.deepEqual(
        { ...ctxOf(first.out), key: undefined },
        {
          key: undefined,
          eventsBefore: 0,
          failuresBefore: 0,
          successesBefore: 0,
          consecutiveFailures: 0,
          firstSeenAt: null,
          lastEventAt: null,
          lastEventType: null,
          lastFailureAt: null,
          lastSuccessAt: null,
        },
      );
      h.clock.advance(1000);
      await h.run(enrich, h.make(crash('indexer', { entity: 'worker/indexer' })));
      h.clock.advance(1000);
      const recovered = h.make({
        event: 'system.worker.crashed',
        payload: { worker: 'indexer', error: 'x', restarts: 2 },
        entity: 'worker/indexer',
      });
      // A success type of our own: reuse the crash schema under a `recovered` name via kindOf.
      const enrichKinds = enrichment({
        kindOf: (e) =>
          e.id === recovered.id ? 'success' : e.event.endsWith('crashed') ? 'failure' : 'other',
      });
      await h.run(enrichKinds, recovered);
      h.clock.advance(1000);
      const third = await h.run(enrich, h.make(crash('indexer', { entity: 'worker/indexer' })));
      const c = ctxOf(third.out);
      assert.equal(c?.key, 'worker/indexer');
      assert.equal(c?.eventsBefore, 3);
      assert.equal(c?.failuresBefore, 2);
      assert.equal(c?.successesBefore, 1);
      assert.equal(c?.consecutiveFailures, 0, 'the streak restarted at the success');
      assert.equal(c?.lastSuccessAt, recovered.timestamp);
      assert.equal(c?.firstSeenAt, first.out?.timestamp);

      // The state is in SQLite: a restart keeps it.
      await h.reopen();
      h.clock.advance(1000);
      const fourth = await h.run(enrichment(), h.make(crash('indexer', { entity: 'worker/indexer' })));
      assert.equal(ctxOf(fourth.out)?.failuresBefore, 3);
      assert.equal(ctxOf(fourth.out)?.consecutiveFailures, 1);
    } finally {
      await h.close();
    }
  });

  it('falls back to the notification group key and leaves events without an entity untouched', async () => {
    const h = await harness();
    try {
      const enrich = enrichment();
      await h.run(enrich, h.make(crash('mailer')));
      const second = await h.run(enrich, h.make(crash('mailer')));
      assert.equal(ctxOf(second.out)?.key, 'system:worker=mailer');
      assert.equal(ctxOf(second.out)?.failuresBefore, 1);
      const plain = h.make({
        event: 'system.daemon.restarted',
        payload: { computer: 'laptop', pid: 1, version: '1', startedAt: 'now' },
      });
      const out = await h.run(enrich, plain);
      assert.equal(out.out, plain, 'no entity: the same object passes');
    } finally {
      await h.close();
    }
  });

  it('keeps other context keys and reads one row per event, never the log', async () => {
    const h = await harness();
    try {
      const enrich = enrichment();
      const env = { ...h.make(todo('a', { entity: 'todo/a' })), context: { origin: 'kept' } };
      const { out } = await h.run(enrich, env);
      assert.equal(out?.context?.origin, 'kept');
      const plan = h.ns.store.db
        .prepare('EXPLAIN QUERY PLAN SELECT events FROM entity_history WHERE entity = ?')
        .all('x') as Array<{ detail: string }>;
      assert.ok(
        plan.some((p) => /PRIMARY KEY|USING/.test(p.detail)) && !plan.some((p) => /^SCAN/.test(p.detail)),
        JSON.stringify(plan),
      );
    } finally {
      await h.close();
    }
  });

  it('forgets entities untouched past the retention', async () => {
    const h = await harness();
    try {
      const enrich = enrichment({ retentionMs: 60_000, pruneEvery: 1 });
      await h.run(enrich, h.make(crash('old', { entity: 'old' })));
      h.clock.advance(120_000);
      await h.run(enrich, h.make(crash('new', { entity: 'new' })));
      const n = h.ns.store.db.prepare('SELECT COUNT(*) FROM entity_history').pluck().get();
      assert.equal(n, 1);
    } finally {
      await h.close();
    }
  });
});
