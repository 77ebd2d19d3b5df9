/**
 * What every cartridge must do, run on each built-in one and on the sandbox adapter (a
 * cartridge package running in the sandbox child process): a stable name; for every event of
 * a mix of catalog types, an envelope that still validates, with the same id and type, or
 * null; the input left as it was; events it emits valid and caused by the input; and no
 * write that outlives a batch that rolled back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { envelopeValidator, type Envelope } from '../../src/envelope/index.js';
import type { Cartridge } from '../../src/pipeline/index.js';
import { CRASH, type Harness, harness, TODO, type UnderTest } from './harness.js';

/** Row counts of every table of the node's file. */
function tableCounts(h: Harness): Record<string, number> {
  const db = h.ns.store.db;
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[];
  return Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT COUNT(*) FROM "${t}"`).pluck().get() as number]));
}

const samples = (h: Harness): Envelope[] => [
  h.make({ event: TODO, payload: { slug: 'c-1', title: 'Write the suite' } }),
  h.make({ event: CRASH, payload: { worker: 'indexer', error: 'oom', restarts: 2 } }),
  h.make({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'ping' } }),
  h.make({ event: 'system.cartridge.failed', payload: { cartridge: 'x', eventId: 'e1', eventType: 't.t', error: 'boom' } }),
  h.make({ event: TODO, source: 'a-stranger', payload: { slug: 'c-2', title: 'From an unknown source' } }),
];

/** Runs the suite for one cartridge; `make` builds it on the case's harness (fresh for each case). */
export function cartridgeCompliance(name: string, make: (h: Harness) => Promise<UnderTest> | UnderTest): void {
  const withHarness = async (fn: (h: Harness, c: Cartridge) => Promise<void>) => {
    const h = await harness();
    try {
      await fn(h, h.bind(await make(h)));
    } finally {
      await h.close();
    }
  };

  test(`cartridge ${name}: has a stable name, returns a valid envelope (same id and type) or null, and leaves its input alone`, { timeout: 60_000 }, async () => {
    await withHarness(async (h, c) => {
      assert.match(c.name, /^[a-z][a-z0-9:._-]*$/, 'a lower-case name that can be a stage name');
      for (const env of samples(h)) {
        const before = structuredClone(env);
        const { out } = await h.run(c, env);
        assert.deepEqual(env, before, `${c.name} must not change the envelope it was given (${env.event})`);
        if (out === null) continue;
        const bad = envelopeValidator.firstError(out);
        assert.equal(bad, undefined, `${c.name} returned an invalid envelope for ${env.event}: ${bad ? `${bad.path} ${bad.message}` : ''}`);
        assert.equal(out.id, env.id, 'the id stays');
        assert.equal(out.event, env.event, 'the type stays');
      }
      for (const e of h.emitted) {
        assert.equal(envelopeValidator.firstError(e), undefined, `${c.name} emitted an invalid ${e.event}`);
        assert.ok(e.causationId, `${c.name} emitted ${e.event} without a cause`);
      }
    });
  });

  test(`cartridge ${name}: a batch that rolls back leaves no row behind`, { timeout: 60_000 }, async () => {
    await withHarness(async (h, c) => {
      // Warm up (first-use tables and prepared statements), then count.
      await h.runMany(c, samples(h));
      const before = tableCounts(h);
      await assert.rejects(
        h.ns.store.writeAsync(async () => {
          for (const env of samples(h)) await c.process(env, h.context(env));
          throw new Error('the batch fails');
        }),
        /the batch fails/,
      );
      assert.deepEqual(tableCounts(h), before, `${c.name} wrote outside the batch's transaction`);
    });
  });
}
