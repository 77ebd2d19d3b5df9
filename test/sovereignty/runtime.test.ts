import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createDefaultCatalog, Type } from '../../src/catalog/index.js';
import type { WeftNode } from '../../src/node/index.js';
import type { Envelope } from '../../src/envelope/index.js';
import { IllegalTransitionError } from '../../src/errors/index.js';
import type { CommittedBatch } from '../../src/pipeline/index.js';
import {
  type CartridgeRuntime,
  type CartridgeRuntimeInit,
  createCartridgeRuntime,
  DependencyCycleError,
} from '../../src/sovereignty/index.js';
import { silentLogger } from '../../src/util/index.js';
import { startTestNode, waitFor } from '../helpers/node.js';
import { cartridge } from './fixtures.js';

const TODO = 'domain.software-development.planning.todo.created';
const NOTE = 'test.cartridge.note';

/** Prefixes the title of every todo it sees. */
const TAGGER = cartridge(
  'tagger',
  `function process(e) { e.payload.title = 'tagged: ' + e.payload.title; e.description = 'changed'; return e; }`,
  { consumes: [TODO] },
);
/** Emits a note per todo; tries to change and drop the event (which alpha cannot do). */
const NOTER = cartridge(
  'noter',
  `function process(e, ctx) { ctx.emit('${NOTE}', { slug: e.payload.slug }); e.payload.title = 'hacked'; return null; }`,
  { consumes: [TODO], emits: [NOTE] },
);

function testCatalog() {
  const catalog = createDefaultCatalog();
  catalog.register({
    type: NOTE,
    description: 'a note a test cartridge emits',
    domain: 'test',
    defaultLevel: 'operational',
    defaultVisibility: 'cluster',
    payload: Type.Object({ slug: Type.String() }),
  });
  return catalog;
}

interface Harness {
  node: WeftNode;
  dir: string;
  runtime: CartridgeRuntime;
  passed: Envelope[];
  close(): Promise<void>;
}

const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.close();
});

async function harness(init: Partial<CartridgeRuntimeInit> = {}, start = true): Promise<Harness> {
  const { node, dir, close } = await startTestNode({ catalog: testCatalog() });
  const system = node.pipeline.cartridges;
  const runtime = createCartridgeRuntime(
    { dataDir: dir, builtins: node.pipeline.order, ...init },
    {
      node,
      logger: silentLogger,
      clock: node.clock,
      onStagesChanged: (stages) => node.pipeline.replace([...system, ...stages]),
    },
  );
  const passed: Envelope[] = [];
  node.onCommitted((b: CommittedBatch) => passed.push(...b.passed));
  const h: Harness = {
    node,
    dir,
    runtime,
    passed,
    close: async () => {
      await runtime.stop();
      await close();
    },
  };
  open.push(h);
  if (start) {
    await runtime.start();
    node.pipeline.replace([...system, ...runtime.stages()]);
  }
  return h;
}

async function emitTodo(h: Harness, slug: string): Promise<Envelope> {
  const env = await h.node.emit({ event: TODO, payload: { slug, title: slug } });
  await waitFor(() => h.passed.some((e) => e.id === env.id), 10_000, `todo ${slug} processed`);
  return h.passed.find((e) => e.id === env.id) as Envelope;
}

describe('cartridge runtime', () => {
  it('should start no sandbox process when no cartridge is active or alpha', async () => {
    const h = await harness();
    await h.runtime.install(TAGGER, { origin: 'local' });
    const s = h.runtime.status();
    assert.equal(s.approvedSandbox.type, 'stopped');
    assert.equal(s.alphaSandbox.type, 'stopped');
    assert.deepEqual(h.runtime.stages(), []);
    assert.equal(h.runtime.list()[0]?.status, 'pending_activation');
    const out = await emitTodo(h, 'plain');
    assert.equal(out.payload.title, 'plain');
  });

  it('should run an activated cartridge on the events it consumes and count its runs', async () => {
    const h = await harness();
    await h.runtime.install(TAGGER, { origin: 'local' });
    const pending = await emitTodo(h, 'before');
    assert.equal(pending.payload.title, 'before', 'a pending cartridge does not run');

    const c = await h.runtime.activate('tagger');
    assert.equal(c.status, 'active');
    assert.deepEqual(h.node.pipeline.order.slice(-1), ['cartridge:tagger']);
    const status = h.runtime.status();
    assert.equal(status.approvedSandbox.type, 'running');
    assert.equal(status.alphaSandbox.type, 'stopped');

    const out = await emitTodo(h, 'one');
    assert.equal(out.payload.title, 'tagged: one');
    assert.equal(out.description, 'changed');
    const other = await h.node.emit({
      event: 'system.worker.crashed',
      payload: { worker: 'w', error: 'x', restarts: 0 },
    });
    await waitFor(() => h.passed.some((e) => e.id === other.id));
    assert.equal(h.passed.find((e) => e.id === other.id)?.description, other.description, 'not consumed: untouched');
    await emitTodo(h, 'two');

    await waitFor(() => (h.runtime.list()[0]?.invocationCount ?? 0) >= 2);
    const listed = h.runtime.list()[0];
    assert.equal(listed?.invocationCount, 2);
    assert.ok(listed?.lastInvokedAt);

    // one cartridge.invoked per run, local, infrastructure, and never a notification
    await waitFor(() => h.node.ns.log.list({ type: 'cartridge.invoked' }).length >= 2);
    const invoked = h.node.ns.log.list({ type: 'cartridge.invoked' });
    assert.equal(invoked.length, 2);
    for (const e of invoked) {
      assert.equal(e.envelope.visibility, 'local');
      assert.equal(e.envelope.level, 0);
      assert.equal(e.envelope.payload.cartridge, 'tagger');
    }
    await h.node.idle();
    assert.equal(h.node.ns.notifications.list({ eventType: 'cartridge.invoked' }).items.length, 0);
  });

  it('should give alpha cartridges copies: their events are added, approved output is untouched', async () => {
    const h = await harness();
    await h.runtime.install(NOTER, { origin: 'weft:ed25519:peer' });
    const c = await h.runtime.activate('noter', { alpha: true });
    assert.equal(c.status, 'alpha');
    assert.deepEqual(h.runtime.stages(), [], 'alpha cartridges are not pipeline stages');

    const out = await emitTodo(h, 'alpha-1');
    assert.equal(out.payload.title, 'alpha-1', 'approved output unchanged');
    await waitFor(() => h.node.ns.log.list({ type: NOTE }).length >= 1, 10_000, 'alpha note');
    const [note] = h.node.ns.log.list({ type: NOTE });
    assert.equal(note?.envelope.source, 'cartridge:noter');
    assert.equal(note?.envelope.visibility, 'local', 'alpha output stays local');
    assert.equal(note?.envelope.causationId, out.id);
    const notification = h.node.ns.notifications.list({ eventType: TODO }).items[0];
    assert.equal(notification?.payload.title, 'alpha-1');
    await waitFor(() => (h.runtime.list()[0]?.invocationCount ?? 0) >= 1);
    await h.runtime.idle();
    assert.equal(h.runtime.status().alphaQueue.dropped, 0);
  });

  it('should promote an alpha cartridge into the approved pipeline', async () => {
    const h = await harness();
    await h.runtime.install(TAGGER, { origin: 'local' });
    await h.runtime.activate('tagger', { alpha: true });
    assert.equal((await emitTodo(h, 'a')).payload.title, 'a');
    const p = await h.runtime.promote('tagger');
    assert.equal(p.status, 'active');
    assert.deepEqual(h.runtime.status().active, ['tagger']);
    assert.deepEqual(h.runtime.status().alpha, []);
    assert.equal((await emitTodo(h, 'b')).payload.title, 'tagged: b');
    await assert.rejects(h.runtime.promote('tagger'), IllegalTransitionError);
  });

  it('should stop running a rejected cartridge and delete it', async () => {
    const h = await harness();
    await h.runtime.install(TAGGER, { origin: 'local' });
    await h.runtime.activate('tagger');
    assert.equal((await emitTodo(h, 'x')).payload.title, 'tagged: x');
    const r = await h.runtime.reject('tagger');
    assert.equal(r.status, 'rejected');
    assert.deepEqual(h.runtime.stages(), []);
    assert.ok(!h.node.pipeline.order.includes('cartridge:tagger'));
    assert.equal((await emitTodo(h, 'y')).payload.title, 'y');
    await waitFor(() => h.runtime.status().approvedSandbox.type !== 'running', 10_000, 'sandbox process exit');
  });

  it('should refuse to activate a cartridge whose dependency is not active', async () => {
    const h = await harness();
    await h.runtime.install(cartridge('needy', 'function process(e) { return e; }', { dependencies: ['ghost'] }), {
      origin: 'local',
    });
    await assert.rejects(h.runtime.activate('needy'), (e: Error) => {
      assert.ok(e instanceof IllegalTransitionError);
      assert.match(e.message, /'needy' depends on 'ghost'/);
      return true;
    });
    assert.equal(h.runtime.list()[0]?.status, 'pending_activation');
    // a dependency on a built-in stage is satisfied
    await h.runtime.install(cartridge('after-dedup', 'function process(e) { return e; }', { dependencies: ['dedup'] }), {
      origin: 'local',
    });
    assert.equal((await h.runtime.activate('after-dedup')).status, 'active');
  });

  it('should refuse to start on a dependency cycle, naming it, with no sandbox process left', async () => {
    const h = await harness({}, false);
    const src = 'function process(e) { return e; }';
    await h.runtime.registry.install(cartridge('a', src, { dependencies: ['b'] }), { origin: 'local' });
    await h.runtime.registry.install(cartridge('b', src, { dependencies: ['a'] }), { origin: 'local' });
    await h.runtime.registry.activate('a');
    await h.runtime.registry.activate('b');
    await assert.rejects(h.runtime.start(), (e: Error) => {
      assert.ok(e instanceof DependencyCycleError);
      assert.match(e.message, /a -> b -> a/);
      return true;
    });
    const s = h.runtime.status();
    assert.equal(s.state, 'stopped');
    assert.notEqual(s.approvedSandbox.type, 'running');
  });

  it('should order active cartridges by their dependencies at start', async () => {
    const h = await harness({}, false);
    const src = 'function process(e) { return e; }';
    await h.runtime.registry.install(cartridge('second', src, { dependencies: ['first'] }), { origin: 'local' });
    await h.runtime.registry.install(cartridge('first', src), { origin: 'local' });
    await h.runtime.registry.activate('second');
    await h.runtime.registry.activate('first');
    await h.runtime.start();
    assert.deepEqual(
      h.runtime.stages().map((s) => s.name),
      ['cartridge:first', 'cartridge:second'],
    );
  });

  it('should suspend a cartridge that keeps failing, report system.cartridge.failed, and keep serving', async () => {
    const h = await harness({ sandbox: { suspendAfter: 2 } });
    await h.runtime.install(cartridge('thrower', "function process() { throw new Error('boom'); }", { consumes: [TODO] }), {
      origin: 'local',
    });
    await h.runtime.activate('thrower');
    assert.equal((await emitTodo(h, 'f1')).payload.title, 'f1', 'a failing cartridge lets the event pass');
    await emitTodo(h, 'f2');
    await waitFor(() => h.runtime.list()[0]?.status === 'suspended', 10_000, 'suspension');
    await h.runtime.idle();
    assert.deepEqual(h.runtime.stages(), []);
    await waitFor(() => h.node.ns.log.list({ type: 'system.cartridge.failed' }).length > 0);
    const [failed] = h.node.ns.log.list({ type: 'system.cartridge.failed' });
    assert.equal(failed?.envelope.payload.cartridge, 'thrower');
    assert.equal(failed?.envelope.payload.suspended, true);
    assert.match(String(failed?.envelope.payload.error), /boom/);
    assert.ok(h.node.ns.deadLetters.count() >= 2);
    assert.equal((await emitTodo(h, 'f3')).payload.title, 'f3');
    // activate brings it back
    assert.equal((await h.runtime.activate('thrower')).status, 'active');
  });

  it('should suspend a cartridge that takes more than its time budget per event, with the defaults', async () => {
    const h = await harness();
    const slow = cartridge('slow', `function process(e) { var t = Date.now(); while (Date.now() - t < 90) {} return e; }`, { consumes: [TODO] });
    await h.runtime.install(slow, { origin: 'local' });
    await h.runtime.activate('slow');
    for (let i = 0; i < 25 && h.runtime.list()[0]?.status === 'active'; i++) await emitTodo(h, `slow-${i}`);
    await waitFor(() => h.runtime.list()[0]?.status === 'suspended', 10_000, 'the slow cartridge suspended');
    await waitFor(() => !h.node.pipeline.order.includes('cartridge:slow'), 10_000, 'the slow cartridge out of the pipeline');
    await waitFor(() => h.node.ns.notifications.list({ eventType: 'system.cartridge.failed' }).items.some((n) => /OVER_BUDGET/.test(String(n.payload.error))), 10_000, 'the failure raised');
    const after = await emitTodo(h, 'after');
    assert.equal(after.payload.title, 'after', 'events flow without it');
  });

  it('should skip a cartridge over its time budget for the rest of the batch at once, and report its suspension once', async () => {
    const h = await harness({ timeBudget: { meanMs: 10, window: 10, minSamples: 5 } });
    const slow = cartridge('slow', `function process(e) { var t = Date.now(); while (Date.now() - t < 30) {} return e; }`, { consumes: [TODO] });
    await h.runtime.install(slow, { origin: 'local' });
    await h.runtime.activate('slow');
    // one batch of 60: the suspension is recorded only after this batch's transaction commits
    const sent = await h.node.emitMany(Array.from({ length: 60 }, (_, i) => ({ event: TODO, payload: { slug: `s${i}`, title: `s${i}` } })));
    await waitFor(() => sent.every((e) => h.passed.some((p) => p.id === e.id)), 20_000, 'the batch passed');
    await waitFor(() => h.runtime.list()[0]?.status === 'suspended', 10_000, 'suspended');
    await h.runtime.idle();
    await h.node.idle();
    const count = (sql: string) => h.node.ns.store.reader.prepare(sql).pluck().get() as number;
    const runs = count("SELECT COUNT(*) FROM events WHERE event = 'cartridge.invoked'");
    assert.ok(runs <= 6, `it ran ${runs} times; it is over budget after 5 (not once per event of the batch)`);
    const failed = h.node.ns.notifications.list({ eventType: 'system.cartridge.failed' }).items;
    assert.equal(failed.length, 1, 'one notification per suspension');
    assert.match(String(failed[0]?.payload.error), /OVER_BUDGET/);
    assert.equal(h.passed.filter((e) => sent.some((s) => s.id === e.id)).every((e) => e.payload.title === e.payload.slug), true, 'every event passed');
  });

  it('should stop two cartridges feeding each other at the causation depth limit and say so', async () => {
    const h = await harness();
    const ping = cartridge('pinger', `function process(e, ctx) { ctx.emit('${NOTE}', { slug: 'p' }); return e; }`, { consumes: [TODO, 'test.cartridge.echo'], emits: [NOTE] });
    const pong = cartridge('ponger', `function process(e, ctx) { ctx.emit('test.cartridge.echo', { slug: 'q' }); return e; }`, { consumes: [NOTE], emits: ['test.cartridge.echo'] });
    h.node.catalog.register({ type: 'test.cartridge.echo', description: 'echo', domain: 'test', defaultLevel: 'infrastructure', payload: Type.Object({ slug: Type.String() }) });
    for (const c of [ping, pong]) {
      await h.runtime.install(c, { origin: 'local' });
      await h.runtime.activate(c.manifest.name);
    }
    await h.node.emit({ event: TODO, payload: { slug: 'loop', title: 'loop' } });
    await waitFor(() => h.node.ns.notifications.list({ eventType: 'system.cartridge.limited' }).items.length > 0, 20_000, 'the limit notification');
    const limited = h.node.ns.notifications.list({ eventType: 'system.cartridge.limited' }).items[0];
    assert.equal(limited?.payload.code, 'CAUSATION_DEPTH');
    await new Promise((r) => setTimeout(r, 500));
    const total = (h.node.ns.store.reader.prepare(`SELECT COUNT(*) FROM events WHERE event IN ('${NOTE}', 'test.cartridge.echo')`).pluck().get() as number);
    assert.ok(total <= 17, `the loop stopped: ${total} events (not tens of thousands)`);
  });

  it("should refuse a cartridge that emits the node's control types at install, at activation and when it runs", async () => {
    const h = await harness();
    const source = `function process(e, ctx) { ctx.emit('cartridge.published', { event_type: 'x', version: '9.9.9', author: 'evil', code: 'ZnVuY3Rpb24gcHJvY2VzcyhlKXtyZXR1cm4gZX0=', entry_point: 'process', dependencies: [], description: 'not the operator' }); return e; }`;
    const evil = cartridge('evil', source, { consumes: [TODO], emits: ['cartridge.published'] });
    await assert.rejects(h.runtime.install(evil, { origin: 'local' }), (e: Error) => {
      assert.match(e.message, /cartridge 'evil' emits 'cartridge\.published': the node's own control types/);
      return true;
    });
    assert.equal(h.runtime.registry.find('evil'), undefined, 'nothing installed');
    await assert.rejects(h.runtime.install(cartridge('sys', 'function process(e) { return e; }', { emits: ['system.cartridge.failed'] }), { origin: 'local' }), /'system\.cartridge\.failed'/);
    // one recorded before the rule existed: activation refuses it
    await h.runtime.registry.install(evil, { origin: 'local' });
    await assert.rejects(h.runtime.activate('evil'), (e: Error) => {
      assert.ok(e instanceof IllegalTransitionError);
      assert.match(e.message, /cannot activate: cartridge 'evil' emits 'cartridge\.published'/);
      return true;
    });
    assert.equal(h.runtime.registry.get('evil').status, 'pending_activation');
    // and one already active runs, but what it emits as the node is refused: the event fails
    await h.runtime.registry.activate('evil');
    await h.runtime.stop();
    await h.runtime.start();
    h.node.pipeline.replace([...h.node.pipeline.cartridges.filter((c) => !c.name.startsWith('cartridge:')), ...h.runtime.stages()]);
    assert.deepEqual(h.runtime.status().active, ['evil']);
    const out = await emitTodo(h, 'c1');
    assert.equal(out.payload.title, 'c1', 'the event passes unchanged');
    await h.node.idle();
    assert.equal(h.node.ns.log.list({ type: 'cartridge.published' }).length, 0, 'no publication was emitted');
    const [dead] = h.node.ns.deadLetters.list();
    assert.equal(dead?.cartridge, 'cartridge:evil');
    assert.match(String(dead?.error), /^WEFT_CARTRIDGE_EMIT_CONTROL: cartridge 'evil' emits 'cartridge\.published'/);
    assert.equal(h.runtime.list()[0]?.invocationCount, 0, 'not a successful run');
  });

  it('should count the runs of each installed code afresh: a new version does not inherit the old one\'s count', async () => {
    const h = await harness();
    await h.runtime.install(TAGGER, { origin: 'local' });
    await h.runtime.activate('tagger');
    for (const slug of ['a', 'b', 'c']) await emitTodo(h, slug);
    await waitFor(() => h.runtime.list()[0]?.invocationCount === 3, 10_000, 'three runs');
    await h.runtime.reject('tagger');
    const v2 = cartridge('tagger', TAGGER.source.replace('tagged: ', 'v2: '), { consumes: [TODO], version: '2.0.0' });
    const installed = await h.runtime.install(v2, { origin: 'local' });
    assert.equal(installed.cartridge.invocationCount, 0, 'new code starts at 0');
    assert.equal(installed.cartridge.lastInvokedAt, null);
    await h.runtime.activate('tagger');
    assert.equal((await emitTodo(h, 'd')).payload.title, 'v2: d');
    await waitFor(() => h.runtime.list()[0]?.invocationCount === 1, 10_000, 'one run of 2.0.0');
    // the same code installed again is no new code: its count stays
    assert.equal((await h.runtime.install(v2, { origin: 'local' })).cartridge.invocationCount, 1);
  });

  it('should count per-event failures of a cartridge that stays active, and raise them at most once a window with the count', async () => {
    const h = await harness({ failureNoticeMs: 300 });
    const flaky = cartridge('flaky', `function process(e) { if (Number(e.payload.slug.slice(1)) % 2 === 1) throw new Error('odd one ' + e.payload.slug); return e; }`, { consumes: [TODO] });
    await h.runtime.install(flaky, { origin: 'local' });
    await h.runtime.activate('flaky');
    for (let i = 0; i < 20; i++) await emitTodo(h, `s${i}`);
    assert.equal(h.runtime.list()[0]?.status, 'active', 'every other event: never 5 in a row, so not suspended');
    const c = h.runtime.list()[0];
    assert.equal(c?.failureCount, 10);
    assert.match(String(c?.lastError), /^WEFT_CARTRIDGE_THREW: .*odd one s19/);
    assert.equal(h.node.ns.deadLetters.count(), 10);
    const notices = () => h.node.ns.notifications.list({ eventType: 'system.cartridge.failed' }).items;
    await waitFor(() => notices().reduce((a, n) => a + Number(n.payload.count ?? 0), 0) === 10, 10_000, 'all ten failures raised');
    const got = notices();
    assert.equal(got.length, 2, 'the first at once, the other nine folded into one at the end of the window');
    assert.deepEqual(got.map((n) => n.payload.count).sort(), [1, 9]);
    assert.ok(got.every((n) => n.payload.cartridge === 'flaky' && n.payload.suspended === undefined));
    // a new version starts its failure count afresh, as its run count
    await h.runtime.reject('flaky');
    const v2 = await h.runtime.install(cartridge('flaky', 'function process(e) { return e; }', { consumes: [TODO], version: '2.0.0' }), { origin: 'local' });
    assert.equal(v2.cartridge.failureCount, 0);
  });

  it('should hold the event an active cartridge returns to the payload limits: too large or too deep fails that event, the original passes', async () => {
    const h = await harness();
    const src = `function process(e) {
      if (e.payload.slug === 'big') e.payload.blob = new Array(300 * 1024 + 1).join('z');
      if (e.payload.slug === 'deep') { var o = {}; var cur = o; for (var i = 0; i < 50; i++) { cur.n = {}; cur = cur.n; } e.payload.deep = o; }
      e.payload.title = 'changed'; return e; }`;
    await h.runtime.install(cartridge('bloater', src, { consumes: [TODO] }), { origin: 'local' });
    await h.runtime.activate('bloater');
    const big = await emitTodo(h, 'big');
    assert.equal(big.payload.title, 'big', 'the original passed on');
    assert.equal(big.payload.blob, undefined);
    const deep = await emitTodo(h, 'deep');
    assert.equal(deep.payload.deep, undefined);
    assert.equal((await emitTodo(h, 'fine')).payload.title, 'changed', 'a returned event within the limits is taken');
    const dead = h.node.ns.deadLetters.list();
    assert.equal(dead.length, 2);
    assert.match(String(dead.find((d) => d.eventId === big.id)?.error), /^WEFT_CARTRIDGE_BAD_RESULT: returned event is invalid: PAYLOAD_TOO_LARGE: field '\/payload' is \d+ bytes as JSON; the limit is 65536/);
    assert.match(String(dead.find((d) => d.eventId === deep.id)?.error), /PAYLOAD_TOO_DEEP: field '\/payload' is nested deeper than 32 levels/);
    assert.equal(h.runtime.list()[0]?.failureCount, 2);
  });

  it('should refuse an activation that would not fit the sandbox memory cap', async () => {
    const h = await harness({ sandbox: { memoryLimitMb: 32, rssCapMb: 160 } });
    const names = ['m1', 'm2', 'm3', 'm4'];
    for (const n of names) await h.runtime.install(cartridge(n, 'function process(e) { return e; }', { consumes: [TODO] }), { origin: 'local' });
    await h.runtime.activate('m1');
    await h.runtime.activate('m2');
    await h.runtime.activate('m3');
    await assert.rejects(h.runtime.activate('m4'), /4 approved cartridges of up to 32 MB each would not fit the sandbox's 160 MB cap \(at most 3\)/);
  });
});
