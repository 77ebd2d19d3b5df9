/** Classification in isolation, and the projection honouring its decision. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import { classification, notificationProjector, TREATMENT_FACT } from '../../src/cartridges/index.js';
import { crash, harness, todo } from './harness.js';

describe('classification', () => {
  it('notifies for types with a lifecycle, indexes operational events, signals infrastructure ones', async () => {
    const h = await harness();
    try {
      h.catalog.register({
        type: 'infra.disk.sampled',
        description: 'disk usage sample',
        domain: 'infra',
        defaultLevel: 'infrastructure',
        payload: Type.Object({ used: Type.Number() }),
      });
      h.catalog.register({
        type: 'infra.backup.finished',
        description: 'backup finished',
        domain: 'infra',
        defaultLevel: 'operational',
        payload: Type.Object({ ok: Type.Boolean() }),
      });
      const c = classification();
      const t = async (e: Parameters<typeof h.make>[0]) =>
        (await h.run(c, h.make(e))).facts.get(TREATMENT_FACT);
      assert.equal(await t(todo('a')), 'notify');
      assert.equal(await t(crash('w')), 'notify');
      assert.equal(await t({ event: 'infra.backup.finished', payload: { ok: true } }), 'index');
      assert.equal(await t({ event: 'infra.disk.sampled', payload: { used: 0.5 } }), 'signal');
      assert.equal(
        await t({ event: 'infra.disk.sampled', payload: { used: 0.5 }, level: 1 }),
        'index',
        'level decides too',
      );
      const unknown = { ...h.make(todo('u')), event: 'domain.future.thing.happened' };
      assert.equal((await h.run(c, unknown)).facts.get(TREATMENT_FACT), 'index');
    } finally {
      await h.close();
    }
  });

  it('demotes low-level lifecycle events but always lets a resolution through, and honours overrides', async () => {
    const h = await harness();
    try {
      const c = classification({ minNotifyLevel: 2, overrides: { 'system.worker.*': 'signal' } });
      const closed = h.make({
        event: 'domain.software-development.planning.todo.closed',
        payload: { slug: 'a', reason: 'delivered' },
        level: 0,
      });
      assert.equal((await h.run(c, closed)).facts.get(TREATMENT_FACT), 'notify');
      assert.equal((await h.run(c, h.make(todo('a', { level: 1 })))).facts.get(TREATMENT_FACT), 'index');
      assert.equal((await h.run(c, h.make(crash('w')))).facts.get(TREATMENT_FACT), 'signal');
    } finally {
      await h.close();
    }
  });

  it('the projection creates notifications only for events classified notify', async () => {
    const h = await harness();
    try {
      const c = classification({ overrides: { 'system.worker.crashed': 'index' } });
      const p = notificationProjector();
      for (const env of [h.make(todo('x')), h.make(crash('w'))]) {
        const r = await h.run(c, env);
        await h.run(p, env, Object.fromEntries(r.facts));
      }
      assert.equal(h.changes.length, 1);
      assert.equal(
        h.ns.notifications.get(h.changes[0]?.id ?? 0).eventType,
        'domain.software-development.planning.todo.created',
      );
    } finally {
      await h.close();
    }
  });
});
