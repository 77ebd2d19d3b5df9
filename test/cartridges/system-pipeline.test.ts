/**
 * The whole system pipeline in a real node over a realistic mixed stream: a local producer, a
 * known peer, an unknown peer and an unknown local source, a flood, and a failure cascade.
 * Then quarantine release and drop, and a restart on the same directory.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Type } from '@sinclair/typebox';
import {
  assertSystemOrder,
  dropQuarantined,
  type EntityContext,
  listQuarantined,
  peerTrustScores,
  releaseQuarantined,
  SYSTEM_PIPELINE_ORDER,
  staticPeerDirectory,
  systemPipeline,
  type TrustEvaluator,
  trustEvaluator,
  trustOutcomeCounts,
} from '../../src/cartridges/index.js';
import {
  BURST_DETECTED,
  createDefaultCatalog,
  FAILURE_CASCADE,
  TRUST_THROTTLED,
} from '../../src/catalog/index.js';
import { createNode, type WeftNode } from '../../src/node/index.js';
import type { EmitInput, Envelope } from '../../src/envelope/index.js';
import { buildEnvelope, type Cartridge, INGRESS_FACT } from '../../src/pipeline/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { IdGenerator } from '../../src/util/ids.js';
import { tempDir } from '../helpers/tmp.js';

const KNOWN = 'weft:ed25519:desktop';
const STRANGER = 'weft:ed25519:stranger';
const SAMPLE = 'infra.disk.sampled';
const TODO = 'domain.software-development.planning.todo.created';
const peers = staticPeerDirectory({ [KNOWN]: { computer: 'desktop', trustLevel: 'peer' } });

function catalog() {
  const c = createDefaultCatalog();
  c.register({
    type: SAMPLE,
    description: 'A disk usage sample',
    domain: 'infra',
    defaultLevel: 'infrastructure',
    payload: Type.Object({ used: Type.Number() }),
  });
  return c;
}

/** Appended after projection: what passed the whole pipeline, per source, and how much flood work ran ahead of each steady event. */
function observer() {
  const passed = new Map<string, number>();
  const floodAhead: number[] = [];
  const contexts = new Map<string, EntityContext>();
  const flags = new Map<string, string[] | undefined>();
  const cartridge: Cartridge = {
    name: 'observer',
    process(e) {
      passed.set(e.source, (passed.get(e.source) ?? 0) + 1);
      flags.set(e.source, e.flags);
      if (e.source === 'planner' && e.payload.slug?.toString().startsWith('steady'))
        floodAhead.push(passed.get('flooder') ?? 0);
      const ent = e.context?.entity as EntityContext | undefined;
      if (ent) contexts.set(e.id, ent);
      return e;
    },
  };
  return { cartridge, passed, floodAhead, contexts, flags };
}

describe('system pipeline in a node', () => {
  const tmp = tempDir('weft-syspipe-');
  const clock = new ManualClock();
  let node: WeftNode;
  let trust: TrustEvaluator;
  const obs = observer();
  const peerIds = new IdGenerator();
  const init = {
    trust: { knownSources: ['planner', 'flooder', 'ci', 'weft@*'], rate: { perSecond: 200, burst: 1000 } },
    correlation: {
      burst: { windowMs: 60_000, threshold: 500 },
      cascade: { windowMs: 300_000, minEntities: 3 },
    },
  };
  const open = async (t: TrustEvaluator, extra: Cartridge[]) =>
    createNode(
      {
        dataDir: tmp.dir,
        computer: 'laptop',
        catalog: catalog(),
        cartridges: (_d, stores) => systemPipeline(init, { peers, trust: t, after: extra })(stores),
      },
      { clock },
    );
  // The ingress fact as the node's two ingresses give it: a verified Weft frame (true; the real
  // path over Redis and TLS is test/mesh/ingress.test.ts) or the TeleClaude JSON wire, which is
  // unsigned (false; test/compat/teleclaude-wire.test.ts). Here it feeds the pipeline's scenario.
  const fromPeer = (peerNodeId: string, computer: string, input: EmitInput, signatureVerified = true) => {
    const env = buildEnvelope(input, {
      catalog: node.catalog,
      clock,
      ids: peerIds,
      defaultSource: `weft@${computer}`,
      origin: peerNodeId,
      computer,
    });
    return node.processor.processBatch([{ position: `peer:${env.id}`, envelope: env, logged: false }], {
      [INGRESS_FACT]: { peerNodeId, peerComputer: computer, signatureVerified },
    });
  };
  const logged = (type: string): Envelope[] => node.ns.log.list({ type, limit: 1000 }).map((l) => l.envelope);

  before(async () => {
    trust = trustEvaluator(init.trust, { peers });
    node = await open(trust, [obs.cartridge]);
    await node.start();
  });
  after(async () => {
    await node.stop();
    tmp.cleanup();
  });

  it('runs the stages in the fixed order', () => {
    assert.deepEqual(node.pipeline.order, [...SYSTEM_PIPELINE_ORDER, 'observer']);
    assertSystemOrder(node.pipeline.cartridges);
    assert.throws(() => assertSystemOrder([{ name: 'dedup' }, { name: 'trust' }]), /stage 1 must be 'trust'/);
    assert.throws(
      () => systemPipeline({}, { after: [{ name: 'dedup', process: (e) => e }] }),
      /system stage/,
    );
  });

  it('processes a mixed stream and decides every outcome', async () => {
    // A local producer.
    for (let i = 0; i < 20; i++) {
      await node.emit({
        event: TODO,
        source: 'planner',
        payload: { slug: `local-${i}`, title: `Local ${i}` },
      });
      clock.advance(1000);
    }
    // A known peer: four signed events and one whose signature did not verify.
    for (let i = 0; i < 4; i++)
      await fromPeer(KNOWN, 'desktop', {
        event: TODO,
        payload: { slug: `peer-${i}`, title: 'From desktop' },
      });
    await fromPeer(
      KNOWN,
      'desktop',
      { event: TODO, payload: { slug: 'peer-unsigned', title: 'Unsigned' } },
      false,
    );
    // An unknown peer and an unknown local source: flagged under standard strictness.
    await fromPeer(STRANGER, 'stranger-box', { event: TODO, payload: { slug: 'stranger-1', title: 'Who?' } });
    await node.emit({ event: TODO, source: 'mystery', payload: { slug: 'mystery-1', title: 'Who?' } });
    // A flood: 10,000 samples within one second, with a steady planner event every 100.
    const pending: Promise<unknown>[] = [];
    for (let chunk = 0; chunk < 100; chunk++) {
      const batch: EmitInput[] = [];
      for (let i = 0; i < 100; i++)
        batch.push({ event: SAMPLE, source: 'flooder', payload: { used: i / 100 } });
      batch.push({ event: TODO, source: 'planner', payload: { slug: `steady-${chunk}`, title: 'Steady' } });
      pending.push(node.emitMany(batch));
      clock.advance(10);
    }
    await Promise.all(pending);
    // A failure cascade: workers on this computer crash, and a sync job on the peer.
    clock.advance(1000);
    for (const w of ['indexer', 'mailer', 'indexer']) {
      await node.emit({
        event: 'system.worker.crashed',
        source: 'ci',
        payload: { worker: w, error: 'oom', restarts: 1 },
      });
      clock.advance(1000);
    }
    await fromPeer(KNOWN, 'desktop', {
      event: 'system.worker.crashed',
      payload: { worker: 'sync', error: 'disk', restarts: 2 },
    });
    assert.ok(await node.idle());
    // Let the events the pipeline synthesized run through it too.
    assert.ok(await node.idle());

    const stats = trust.stats();
    assert.deepEqual(stats.get('local:planner'), {
      seen: 120,
      accept: 120,
      flag: 0,
      quarantine: 0,
      reject: 0,
    });
    assert.deepEqual(stats.get(KNOWN), { seen: 6, accept: 5, flag: 0, quarantine: 1, reject: 0 });
    assert.deepEqual(stats.get(STRANGER), { seen: 1, accept: 0, flag: 1, quarantine: 0, reject: 0 });
    assert.deepEqual(stats.get('local:mystery'), { seen: 1, accept: 0, flag: 1, quarantine: 0, reject: 0 });
    const flood = stats.get('local:flooder');
    assert.ok(flood && flood.accept >= 1000 && flood.accept <= 1201, JSON.stringify(flood));
    assert.equal(flood.accept + flood.quarantine, 10_000);

    // The flood is held at the first stage; the steady source is not held back behind it.
    assert.equal(obs.passed.get('planner'), 120, 'every steady planner event passed every stage');
    assert.equal(obs.passed.get('flooder'), flood.accept, 'held flood events never reached later stages');
    assert.equal(obs.floodAhead.length, 100);
    assert.ok(
      Math.max(...obs.floodAhead) <= flood.accept,
      'at most the allowed burst ran ahead of any steady event',
    );
    const invocations = new Map(node.ns.stats.list().map((s) => [s.cartridgeName, s.invocationCount]));
    assert.equal(invocations.get('trust'), node.processor.stats.processed);
    assert.equal(
      invocations.get('enrichment'),
      node.processor.stats.processed - flood.quarantine - 1 /* unsigned */,
    );

    // Quarantine holds exactly what trust held, and the counts are visible per source.
    assert.equal(node.ns.quarantine.count('held'), flood.quarantine + 1);
    const q = trustOutcomeCounts(node.ns, { outcome: 'quarantine' });
    assert.deepEqual(
      q.map((c) => [c.peer, c.source, c.reason, c.count]),
      [
        ['', 'flooder', 'rate_exceeded', flood.quarantine],
        [KNOWN, 'weft@desktop', 'unsigned', 1],
      ],
    );
    assert.equal(logged(TRUST_THROTTLED).length, 1);

    // Flagged events carry their flags through every later stage, and still notify.
    assert.deepEqual(obs.flags.get('weft@stranger-box'), ['trust:unknown_source']);
    assert.deepEqual(obs.flags.get('mystery'), ['trust:unknown_source']);
    assert.deepEqual(obs.flags.get('planner'), undefined);

    // Exactly one burst (the samples that got through) and one cascade.
    const bursts = logged(BURST_DETECTED);
    assert.equal(bursts.length, 1);
    assert.equal(bursts[0]?.payload.eventType, SAMPLE);
    const cascades = logged(FAILURE_CASCADE);
    assert.equal(cascades.length, 1);
    assert.deepEqual(cascades[0]?.payload.computers, ['desktop', 'laptop']);
    assert.deepEqual(cascades[0]?.payload.entities, [
      'system:worker=indexer',
      'system:worker=mailer',
      'system:worker=sync',
    ]);

    // Enrichment: the second indexer crash knows about the first.
    const indexerCrashes = logged('system.worker.crashed').filter((e) => e.payload.worker === 'indexer');
    const second = indexerCrashes.sort((a, b) => (a.id < b.id ? -1 : 1))[1];
    assert.equal(obs.contexts.get(second?.id ?? '')?.failuresBefore, 1);

    // Classification: samples are signals (no notifications); todos, crashes, burst, cascade and the throttle notice notify.
    const byType = new Map<string, number>();
    for (const n of node.ns.notifications.list({ limit: 1000 }).items)
      byType.set(n.eventType, (byType.get(n.eventType) ?? 0) + 1);
    assert.equal(byType.get(SAMPLE), undefined);
    assert.equal(byType.get(TODO), 120 + 4 + 1 + 1);
    assert.equal(byType.get('system.worker.crashed'), 3, 'one per worker group');
    assert.equal(byType.get(BURST_DETECTED), 1);
    assert.equal(byType.get(FAILURE_CASCADE), 1);
    assert.equal(byType.get(TRUST_THROTTLED), 1);
  });

  it('reports no second burst or cascade inside the same window', async () => {
    for (let i = 0; i < 600; i++)
      await node
        .emitMany([{ event: SAMPLE, source: 'ci', payload: { used: 0.1 } }])
        .then(() => clock.advance(1));
    await node.emit({
      event: 'system.worker.crashed',
      source: 'ci',
      payload: { worker: 'renderer', error: 'oom', restarts: 1 },
    });
    assert.ok(await node.idle());
    assert.equal(logged(BURST_DETECTED).length, 1);
    assert.equal(logged(FAILURE_CASCADE).length, 1);
  });

  it('releases a held event into the stages after trust, once, and drops another', async () => {
    const unsigned = listQuarantined(node.ns, { limit: 10_000 }).find((q) => q.reason === 'unsigned');
    assert.ok(unsigned);
    const before = node.ns.notifications.count();
    const processBatch = node.processor.processBatch.bind(node.processor);
    const released = await releaseQuarantined({ ns: node.ns, processBatch }, unsigned.id);
    assert.equal(released.status, 'released');
    assert.equal(node.ns.notifications.count(), before + 1, 'it reached projection');
    await assert.rejects(releaseQuarantined({ ns: node.ns, processBatch }, unsigned.id), {
      code: 'WEFT_ILLEGAL_TRANSITION',
    });
    const floodRow = listQuarantined(node.ns, { limit: 1 })[0];
    assert.ok(floodRow);
    assert.equal((await dropQuarantined(node.ns, floodRow.id)).status, 'dropped');
    await assert.rejects(dropQuarantined(node.ns, floodRow.id), { code: 'WEFT_ILLEGAL_TRANSITION' });
  });

  it('keeps peer scores, outcome counts and correlation windows across a restart', async () => {
    await node.stop();
    trust = trustEvaluator(init.trust, { peers });
    node = await open(trust, []);
    await node.start();
    const score = peerTrustScores(node.ns, clock.now()).find((p) => p.peer === KNOWN);
    assert.ok(score && score.offenses === 1 && score.penalty > 0, JSON.stringify(score));
    assert.equal(trustOutcomeCounts(node.ns, { peer: KNOWN })[0]?.count, 1);
    await node.emit({
      event: 'system.worker.crashed',
      source: 'ci',
      payload: { worker: 'backup', error: 'x', restarts: 1 },
    });
    assert.ok(await node.idle());
    assert.equal(logged(FAILURE_CASCADE).length, 1, 'same window: not reported again after the restart');
    clock.advance(300_000);
    for (const w of ['a', 'b', 'c'])
      await node.emit({
        event: 'system.worker.crashed',
        source: 'ci',
        payload: { worker: w, error: 'x', restarts: 1 },
      });
    assert.ok(await node.idle());
    assert.equal(logged(FAILURE_CASCADE).length, 2, 'the next window reports again');
  });
});
