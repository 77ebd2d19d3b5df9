import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { type AutonomyResolver, createDomainRunner, type DomainRunner, type DomainRunnerInit, PipelineValidationError } from '../../src/domains/index.js';
import type { WeftNode } from '../../src/node/index.js';
import type { AutonomyLevel } from '../../src/sovereignty/index.js';
import { silentLogger, systemClock } from '../../src/util/index.js';
import { startTestNode, waitFor } from '../helpers/node.js';
import { alerting, busy, todo, writeCartridge, writeDomain } from './fixtures.js';

const SUBSCRIBE_TODOS = `[subscribe]\ndomains = []\nevents = ["domain.software-development.*"]\n`;

/** Levels by cartridge; L3 otherwise (a plain table, as domain.toml's [autonomy.cartridges] gives). */
function levels(byCartridge: Record<string, AutonomyLevel> = {}): AutonomyResolver {
  return { resolve: (q) => ({ level: byCartridge[q.cartridge] ?? 'L3', reason: byCartridge[q.cartridge] ? `cartridge rule ${q.cartridge}` : 'global default' }) };
}

async function withRunner(
  setup: (dataDir: string) => void,
  opts: { autonomy?: AutonomyResolver; roles?: Record<string, Record<string, string>>; init?: Omit<DomainRunnerInit, 'dataDir'> } = {},
): Promise<{ node: WeftNode; runner: DomainRunner; dir: string; close: () => Promise<void> }> {
  const t = await startTestNode();
  setup(t.dir);
  const runner = createDomainRunner(
    { dataDir: t.dir, ...opts.init },
    { node: t.node, logger: silentLogger, clock: systemClock, autonomy: opts.autonomy ?? levels(), rolesOf: (m) => opts.roles?.[m] },
  );
  t.node.pipeline.replace([...t.node.pipeline.cartridges, runner.stage]);
  try {
    await runner.start();
  } catch (err) {
    await t.close();
    throw err;
  }
  return {
    node: t.node,
    runner,
    dir: t.dir,
    close: async () => {
      await runner.stop();
      await t.close();
    },
  };
}

function alerts(node: WeftNode, domain?: string) {
  return node.ns.notifications.list({ eventType: 'domains.alert', limit: 500, ...(domain ? { domain } : {}) }).items;
}

describe('domain pipelines', () => {
  const open: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of open) await c();
  });

  it('a slow domain and a failing one delay neither another domain nor the system pipeline', async () => {
    const t = await withRunner((dir) => {
      writeCartridge(writeDomain(dir, 'slow', `timeout_ms = 5000\n${SUBSCRIBE_TODOS}`), 'sleeper', busy('slow done', 2000));
      writeCartridge(writeDomain(dir, 'broken', SUBSCRIBE_TODOS), 'boom', `function process() { throw new Error('kaboom'); }`);
      writeCartridge(writeDomain(dir, 'fast', SUBSCRIBE_TODOS), 'quick', alerting('fast saw it'));
    });
    open.push(t.close);
    const t0 = performance.now();
    const [e] = await t.node.emitMany([todo('t1')]);
    await waitFor(() => alerts(t.node, 'fast').length === 1, 10_000, 'the fast domain to alert');
    const fastMs = performance.now() - t0;
    // The system pipeline projected the todo itself, and the slow domain is still at work.
    assert.equal(t.node.ns.notifications.list({ eventType: 'domain.software-development.planning.todo.created' }).items.length, 1);
    assert.equal(alerts(t.node, 'slow').length, 0, 'the slow domain finished before the fast one was projected');
    console.log(`# fast domain projected ${fastMs.toFixed(1)} ms after the emit, while the slow one still ran`);
    await waitFor(() => alerts(t.node, 'slow').length === 1, 15_000, 'the slow domain to finish');
    const failed = t.node.ns.notifications.list({ eventType: 'system.cartridge.failed' }).items;
    assert.ok(failed.some((n) => n.payload.cartridge === 'domain:broken/boom' && n.payload.eventId === e?.id && String(n.payload.error).includes('kaboom')), 'system.cartridge.failed names the domain cartridge and the event');
    assert.ok(t.node.ns.deadLetters.list().some((d) => d.cartridge === 'domain:broken/boom' && d.eventId === e?.id), 'the failure left a dead letter');
    // The fast domain's output carries the domain and the lineage.
    const out = t.node.ns.log.children(e?.id as string).map((x) => x.envelope).find((x) => x.source === 'domain:fast/quick');
    assert.equal(out?.domain, 'fast');
    assert.equal(out?.event, 'domains.alert');
  });

  it('runs independent cartridges of one DAG level at the same time, and dependents after both', async () => {
    const t = await withRunner((dir) => {
      const d = writeDomain(dir, 'par', `timeout_ms = 2000\n${SUBSCRIBE_TODOS}`);
      writeCartridge(d, 'left', busy('left', 200));
      writeCartridge(d, 'right', busy('right', 200));
      writeCartridge(d, 'join', busy('join', 1), { dependencies: ['left', 'right'] });
    });
    open.push(t.close);
    assert.deepEqual(t.runner.pipelines.domains[0]?.levels, [['left', 'right'], ['join']]);
    await t.node.emitMany([todo('p1')]);
    await waitFor(() => alerts(t.node, 'par').length === 3, 10_000, 'three alerts');
    const span = (title: string) => {
      const n = alerts(t.node, 'par').find((x) => x.payload.title === title);
      return JSON.parse(String(n?.payload.body)) as { start: number; end: number };
    };
    const [l, r, j] = [span('left'), span('right'), span('join')];
    assert.ok(l.start < r.end && r.start < l.end, `left ${JSON.stringify(l)} and right ${JSON.stringify(r)} overlap`);
    assert.ok(j.start >= Math.max(l.end, r.end), 'join starts after both of its dependencies ended');
    console.log(`# level of two 200 ms cartridges took ${Math.max(l.end, r.end) - Math.min(l.start, r.start)} ms`);
  });

  it('refuses to start on a cycle, a missing dependency, a scope violation and an output conflict, naming the cartridges', async () => {
    const cases: Array<[string, (dir: string) => void, RegExp, string[]]> = [
      [
        'cycle',
        (dir) => {
          const d = writeDomain(dir, 'loop');
          writeCartridge(d, 'a', alerting('a'), { dependencies: ['b'] });
          writeCartridge(d, 'b', alerting('b'), { dependencies: ['a'] });
        },
        /domain 'loop': dependency cycle a -> b -> a/,
        ['a', 'b'],
      ],
      [
        'missing_dependency',
        (dir) => writeCartridge(writeDomain(dir, 'lonely'), 'needy', alerting('x'), { dependencies: ['ghost'] }),
        /cartridge 'needy' depends on 'ghost', which is not in this pipeline/,
        ['needy', 'ghost'],
      ],
      [
        'scope',
        (dir) => writeCartridge(writeDomain(dir, 'narrow'), 'wide', alerting('x'), { emits: ['domains.alert', 'domain.software-development.planning.todo.ready'] }),
        /cartridge 'wide' emits 'domain.software-development.planning.todo.ready', outside what this pipeline may emit/,
        ['wide'],
      ],
      [
        'conflict',
        (dir) => {
          const d = writeDomain(dir, 'both');
          writeCartridge(d, 'one', alerting('1'), { outputs: ['score'] });
          writeCartridge(d, 'two', alerting('2'), { outputs: ['score'] });
        },
        /cartridges 'one' and 'two' both claim the output 'score'/,
        ['one', 'two'],
      ],
    ];
    for (const [problem, setup, message, names] of cases) {
      await assert.rejects(withRunner(setup), (err: unknown) => {
        assert.ok(err instanceof PipelineValidationError, `${problem}: ${String(err)}`);
        assert.equal(err.problem, problem);
        assert.match(err.message, message);
        assert.deepEqual([...err.cartridges].sort(), [...names].sort());
        assert.equal(err.code, 'WEFT_PIPELINE_INVALID');
        return true;
      });
    }
  });

  it('holds an L1 action for a human, emits it on approval; L2 acts and tells the admins', async () => {
    const t = await withRunner(
      (dir) => {
        const d = writeDomain(dir, 'ops', SUBSCRIBE_TODOS);
        writeCartridge(d, 'careful', alerting('careful'));
        writeCartridge(d, 'bold', alerting('bold'));
      },
      { autonomy: levels({ careful: 'L1', bold: 'L2' }) },
    );
    open.push(t.close);
    await t.node.emitMany([todo('a1')]);
    await waitFor(() => t.node.ns.notifications.list({ eventType: 'domains.action.pending' }).items.length === 1, 10_000, 'the held action');
    await waitFor(() => t.node.ns.notifications.list({ eventType: 'domains.action.taken' }).items.length === 1, 10_000, 'the L2 note');
    assert.deepEqual(alerts(t.node).map((n) => n.payload.title), ['bold']);
    const held = t.node.ns.notifications.list({ eventType: 'domains.action.pending' }).items[0];
    assert.equal(held?.payload.cartridge, 'careful');
    assert.equal((held?.payload.proposed as { event: string } | undefined)?.event, 'domains.alert');
    assert.equal(await t.runner.resolveAction(held?.id as number, true), 'emitted');
    await waitFor(() => alerts(t.node).length === 2, 10_000, 'the approved alert');
    assert.ok(alerts(t.node).some((n) => n.payload.title === 'careful' && n.domain === 'ops'));
  });

  it("runs a member's personal cartridges after their domains, on their subscribed domains only", async () => {
    const roles: Record<string, Record<string, string>> = { alice: { eng: 'member' } };
    const t = await withRunner(
      (dir) => {
        writeCartridge(writeDomain(dir, 'eng', `[subscribe]\ndomains = []\nevents = ["domain.software-development.planning.todo.created"]\n`), 'triage', alerting('triage'), { consumes: ['domain.software-development.planning.todo.created'] });
        writeCartridge(writeDomain(dir, 'sales', `[subscribe]\ndomains = []\nevents = ["domain.software-development.planning.todo.closed"]\n`), 'deal', alerting('deal'), { consumes: ['domain.software-development.planning.todo.closed'] });
        const me = join(dir, 'personal', 'alice');
        mkdirSync(me, { recursive: true });
        writeFileSync(join(me, 'subscriptions.toml'), 'events = ["domain.software-development.*"]\n');
        writeCartridge(me, 'ping', alerting('for alice'));
      },
      { roles },
    );
    open.push(t.close);
    assert.deepEqual(t.runner.reachOf(t.runner.pipelines.personal[0] as never), ['eng']);
    await t.node.emitMany([todo('x1'), { event: 'domain.software-development.planning.todo.closed', payload: { slug: 'x1', reason: 'delivered' } }]);
    await waitFor(() => alerts(t.node).length === 3, 10_000, 'three alerts');
    await t.runner.idle();
    const mine = alerts(t.node).filter((n) => n.payload.title === 'for alice');
    assert.equal(mine.length, 1, 'alice saw the todo her domain eng received, not the closed one only sales receives');
    assert.equal(mine[0]?.payload.body, 'x1');
    const lanes = t.runner.status();
    assert.deepEqual(lanes.map((l) => l.scope).sort(), ['eng', 'personal:alice', 'sales']);
    // Once her role in eng is revoked, her cartridges see nothing of eng, without a reload.
    roles.alice = {};
    t.runner.rolesChanged();
    await t.node.emitMany([todo('x2')]);
    await waitFor(() => alerts(t.node).filter((n) => n.payload.title === 'triage').length === 2, 10_000, 'eng to see x2');
    await t.runner.idle();
    assert.equal(alerts(t.node).filter((n) => n.payload.title === 'for alice').length, 1, 'a revoked member sees nothing more');
  });

  it('leaves out a personal pipeline subscribed to a domain the member holds no role in, and runs the rest', async () => {
    const t = await withRunner(
      (dir) => {
        writeCartridge(writeDomain(dir, 'eng', SUBSCRIBE_TODOS), 'triage', alerting('triage'));
        const me = join(dir, 'personal', 'bob');
        mkdirSync(me, { recursive: true });
        writeFileSync(join(me, 'subscriptions.toml'), 'domains = ["eng"]\n');
        writeCartridge(me, 'peek', alerting('peek'));
      },
      { roles: { bob: {} } },
    );
    open.push(t.close);
    assert.deepEqual(t.runner.pipelines.personal, []);
    assert.match(t.runner.pipelines.refused[0]?.message ?? '', /personal pipeline of 'bob': subscribes to 'eng', where 'bob' holds no role/);
    await t.node.emitMany([todo('b1')]);
    await waitFor(() => alerts(t.node).length === 1, 10_000, 'eng to run');
    await t.runner.idle();
    assert.equal(alerts(t.node)[0]?.payload.title, 'triage');
  });

  it('refuses a live change that does not validate, keeps the running pipeline, and says so', async () => {
    const t = await withRunner((dir) => writeCartridge(writeDomain(dir, 'live', SUBSCRIBE_TODOS), 'first', alerting('first')));
    open.push(t.close);
    writeCartridge(join(t.dir, 'company', 'domains', 'live'), 'second', alerting('second'), { dependencies: ['nobody'] });
    await assert.rejects(t.runner.reload(), /cartridge 'second' depends on 'nobody'/);
    await waitFor(() => t.node.ns.notifications.list({ eventType: 'domains.pipeline.refused' }).items.length === 1, 10_000, 'the refusal');
    await t.node.emitMany([todo('still')]);
    await waitFor(() => alerts(t.node, 'live').length === 1, 10_000, 'the old pipeline to keep running');
    assert.equal(alerts(t.node, 'live')[0]?.payload.title, 'first');
  });

  it("refuses a cartridge that emits the node's own types, whatever the domain's scope says", async () => {
    await assert.rejects(
      withRunner((dir) => writeCartridge(writeDomain(dir, 'forger', `emits = ["domains.*", "system.*"]\n${SUBSCRIBE_TODOS}`), 'forge', alerting('x'), { emits: ['domains.cartridge.submitted'] })),
      /cartridge 'forge' emits 'domains.cartridge.submitted': the node's own types/,
    );
  });

  it('keeps going after an idle spell (the inbox is cleaned up meanwhile) and across a reload of two lanes', async () => {
    const t = await withRunner((dir) => {
      writeCartridge(writeDomain(dir, 'aaa', SUBSCRIBE_TODOS), 'one', alerting('aaa'));
      writeCartridge(writeDomain(dir, 'bbb', SUBSCRIBE_TODOS), 'two', alerting('bbb'));
    });
    open.push(t.close);
    await t.node.emitMany([todo('i1')]);
    await waitFor(() => alerts(t.node).length === 2, 10_000, 'the first two alerts');
    // Longer than the clean-up period: the inbox is emptied and positions must still hold.
    await new Promise((r) => setTimeout(r, 1500));
    await t.node.emitMany([todo('i2')]);
    await waitFor(() => alerts(t.node).length === 4, 10_000, 'alerts after the idle spell');
    // Change both lanes and reload while events keep coming: none is lost, none repeated.
    const emitting = (async () => {
      for (let i = 0; i < 30; i++) {
        await t.node.emitMany([todo(`r${i}`)]);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    writeCartridge(join(t.dir, 'company', 'domains', 'aaa'), 'one', alerting('aaa'), { version: '1.0.1' });
    writeCartridge(join(t.dir, 'company', 'domains', 'bbb'), 'two', alerting('bbb'), { version: '1.0.1' });
    await t.runner.reload();
    await emitting;
    await waitFor(() => alerts(t.node).length === 64, 20_000, `64 alerts (have ${alerts(t.node).length})`);
    await t.runner.idle();
    for (const d of ['aaa', 'bbb']) {
      const bodies = alerts(t.node, d).map((n) => n.payload.body);
      assert.equal(new Set(bodies).size, 32, `${d}: every todo exactly once`);
    }
  });

  it("records a cartridge's output its type refuses, and the lane carries on", async () => {
    const t = await withRunner((dir) => {
      const d = writeDomain(dir, 'sloppy', SUBSCRIBE_TODOS);
      // Every other todo gets an alert without its title: the schema refuses it.
      writeCartridge(d, 'half', `function process(e, ctx) { ctx.emit('domains.alert', e.payload.slug.endsWith('1') ? { body: 'no title' } : { title: 'fine ' + e.payload.slug }); return e; }`);
    });
    open.push(t.close);
    const [bad] = await t.node.emitMany([todo('p1'), todo('p2')]);
    await waitFor(() => alerts(t.node).length === 1, 10_000, 'the good alert');
    await waitFor(() => t.node.ns.deadLetters.list().some((d) => d.eventId === bad?.id), 10_000, 'the dead letter of the bad output');
    await waitFor(
      () => t.node.ns.notifications.list({ eventType: 'system.cartridge.failed' }).items.some((n) => n.payload.cartridge === 'domain:sloppy/half' && String(n.payload.error).includes('WEFT_CARTRIDGE_BAD_OUTPUT')),
      10_000,
      'system.cartridge.failed naming the bad output',
    );
    await t.node.emitMany([todo('p4')]);
    await waitFor(() => alerts(t.node).length === 2, 10_000, 'the lane to carry on');
  });

  it('two domains feeding each other: one event causes a bounded number of outputs, and the refusals are one notice per lane with their count', async () => {
    const SUB = `[subscribe]\ndomains = []\nevents = ["domains.alert", "domain.software-development.*"]\n`;
    // Each answers every event, the other's alerts included, with two alerts of its own.
    const twice = (who: string) => `function process(e, ctx) { ctx.emit('domains.alert', { title: '${who} ' + e.id + ' a' }); ctx.emit('domains.alert', { title: '${who} ' + e.id + ' b' }); return e; }`;
    const t = await withRunner(
      (dir) => {
        writeCartridge(writeDomain(dir, 'ping', SUB), 'p', twice('ping'), { consumes: ['domains.alert', 'domain.software-development.*'] });
        writeCartridge(writeDomain(dir, 'pong', SUB), 'q', twice('pong'), { consumes: ['domains.alert', 'domain.software-development.*'] });
      },
      // 40, not the default 256: the same bound, reached sooner.
      { init: { maxOutputsPerEvent: 40 } },
    );
    let closed = false;
    open.push(async () => {
      if (!closed) await t.close();
    });
    await t.node.emitMany([todo('loop')]);
    const limited = () => t.node.ns.notifications.list({ eventType: 'system.cartridge.failed', limit: 500 }).items.filter((n) => String(n.payload.error).includes('WEFT_LIMIT'));
    await waitFor(() => limited().length > 0, 20_000, 'a refusal at the limit');
    assert.ok(await t.runner.idle(20_000), 'the loop ends');
    await t.node.idle();
    const made = t.node.ns.log.list({ type: 'domains.alert', limit: 5000 }).length;
    assert.ok(made <= 40, `at most 40 outputs for one event, got ${made}`);
    assert.ok(made >= 30, `the loop ran up to the cap, got ${made}`);
    assert.match(String(limited()[0]?.payload.error), /one event may cause at most 40 domain outputs in all/);
    // Within the minute: one notice per lane, the first refusal; the rest fold into the window's end.
    assert.ok(limited().length <= 2, `one notice per lane, got ${limited().length}`);
    await t.runner.stop();
    await waitFor(() => limited().some((n) => Number(n.payload.count) > 1), 10_000, 'the folded count, raised at the stop');
    const notices = limited();
    assert.ok(notices.length <= 4, `the first refusal and the folded rest per lane, got ${notices.length}`);
    assert.ok(notices.some((n) => Number(n.payload.count) > 1), 'a folded notice carries its count');
    closed = true;
    await t.close();
  });

  it('gives two domains their own notification for one alert key', async () => {
    const keyed = (title: string) => `function process(e, ctx) { ctx.emit('domains.alert', { title: ${JSON.stringify(title)}, key: 'same' }); return e; }`;
    const t = await withRunner((dir) => {
      writeCartridge(writeDomain(dir, 'left', SUBSCRIBE_TODOS), 'l', keyed('from left'));
      writeCartridge(writeDomain(dir, 'right', SUBSCRIBE_TODOS), 'r', keyed('from right'));
    });
    open.push(t.close);
    await t.node.emitMany([todo('k1')]);
    await waitFor(() => alerts(t.node, 'left').length === 1 && alerts(t.node, 'right').length === 1, 10_000, 'one alert per domain');
    assert.equal(alerts(t.node, 'left')[0]?.payload.title, 'from left');
    assert.equal(alerts(t.node, 'right')[0]?.payload.title, 'from right');
  });

  it("moves a member's lane on events only it receives, and leaves out a removed member's pipeline without stopping the rest", async () => {
    const roles: Record<string, Record<string, string>> = { alice: { eng: 'member' }, bob: { eng: 'member' } };
    const t = await withRunner(
      (dir) => {
        writeCartridge(writeDomain(dir, 'eng', SUBSCRIBE_TODOS), 'triage', alerting('triage'), { consumes: ['domain.software-development.planning.todo.created'] });
        for (const m of ['alice', 'bob']) {
          const me = join(dir, 'personal', m);
          mkdirSync(me, { recursive: true });
          writeCartridge(me, 'closed', alerting(`closed for ${m}`), { consumes: ['domain.software-development.planning.todo.closed'] });
        }
      },
      { roles },
    );
    open.push(t.close);
    // Only the personal lanes consume it: they must not wait for eng to see another event.
    await t.node.emitMany([{ event: 'domain.software-development.planning.todo.closed', payload: { slug: 'c1', reason: 'delivered' } }]);
    await waitFor(() => alerts(t.node).length === 2, 10_000, 'both members to see the closed todo');
    const mine = alerts(t.node).find((n) => n.payload.title === 'closed for alice');
    assert.equal(mine?.domain, 'personal:alice', "a member's output is in their own notification domain");
    // bob is removed: the next reload leaves his pipeline out and says so; eng and alice run on.
    delete roles.bob;
    t.runner.rolesChanged();
    const set = await t.runner.reload();
    assert.deepEqual(set.personal.map((p) => p.scope), ['personal:alice']);
    assert.match(set.refused[0]?.message ?? '', /there is no member 'bob'/);
    await waitFor(() => t.node.ns.notifications.list({ eventType: 'domains.pipeline.refused' }).items.length === 1, 10_000, 'the refusal');
  });

  it('brings a suspended cartridge back on reload', async () => {
    const t = await withRunner((dir) => writeCartridge(writeDomain(dir, 'flaky', SUBSCRIBE_TODOS), 'moody', `function process(e, ctx) { if (e.payload.slug.startsWith('bad')) throw new Error('no'); ctx.emit('domains.alert', { title: 'ok ' + e.payload.slug }); return e; }`));
    open.push(t.close);
    await t.node.emitMany([1, 2, 3, 4, 5].map((i) => todo(`bad${i}`)));
    await waitFor(() => t.node.ns.notifications.list({ eventType: 'system.cartridge.failed' }).items.some((n) => n.payload.suspended === true), 10_000, 'the suspension');
    await t.node.emitMany([todo('good1')]);
    await t.runner.idle();
    assert.equal(alerts(t.node).length, 0, 'a suspended cartridge does not run');
    await t.runner.reload();
    await t.node.emitMany([todo('good2')]);
    await waitFor(() => alerts(t.node).length === 1, 10_000, 'the cartridge to run again after the reload');
  });
});

describe('each occurrence of a notice is a notification of its own; a repeat of one occurrence is not', () => {
  const open: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of open) await c();
  });
  const notes = (node: WeftNode, type: string) => node.ns.notifications.list({ eventType: type, limit: 100 }).items;

  it('a cartridge suspended, brought back by a reload and suspended again: two notifications, each with its error', async () => {
    const t = await withRunner((dir) => writeCartridge(writeDomain(dir, 'ops', SUBSCRIBE_TODOS), 'thrower', `function process(e) { throw new Error('boom ' + e.payload.slug); }`));
    open.push(t.close);
    const suspensions = () => notes(t.node, 'system.cartridge.failed').filter((n) => n.payload.suspended === true);
    await t.node.emitMany([1, 2, 3, 4, 5].map((i) => todo(`first${i}`)));
    await waitFor(() => suspensions().length === 1, 10_000, 'the first suspension');
    await t.runner.reload();
    await t.node.emitMany([1, 2, 3, 4, 5].map((i) => todo(`second${i}`)));
    await waitFor(() => suspensions().length === 2, 10_000, 'the second suspension, as a notification of its own');
    const [newer, older] = suspensions();
    assert.match(String(older?.payload.error), /boom first/);
    assert.match(String(newer?.payload.error), /boom second/, 'the second shows its own error');
    // The same occurrence delivered again (a replay, a retry) is still one notification.
    await t.node.emitMany([{ event: 'system.cartridge.failed', source: 'domain:ops/thrower', payload: newer?.payload ?? {} }]);
    await t.node.idle();
    assert.equal(suspensions().length, 2);
  });

  it('a pipeline refused, fixed and refused again: two notifications; refused at every reload meanwhile: one', async () => {
    const t = await withRunner(
      (dir) => {
        writeCartridge(writeDomain(dir, 'eng', SUBSCRIBE_TODOS), 'triage', alerting('triage'));
        const me = join(dir, 'personal', 'bob');
        mkdirSync(me, { recursive: true });
        writeFileSync(join(me, 'subscriptions.toml'), 'domains = ["eng"]\n');
        writeCartridge(me, 'peek', alerting('peek'), { dependencies: ['triage'] });
      },
      { roles: { bob: { eng: 'member' } } },
    );
    open.push(t.close);
    const refused = () => notes(t.node, 'domains.pipeline.refused');
    const personal = () => refused().filter((n) => n.payload.scope === 'personal:bob');
    await waitFor(() => personal().length === 1, 10_000, 'the refusal of bob\'s pipeline');
    await t.runner.reload();
    await t.runner.reload();
    await t.node.idle();
    assert.equal(personal().length, 1, 'still refused for the same reason: the same notification');
    const me = join(t.dir, 'personal', 'bob');
    writeCartridge(me, 'peek', alerting('peek'));
    await t.runner.reload();
    assert.equal(t.runner.pipelines.personal.length, 1, 'fixed');
    writeCartridge(me, 'peek', alerting('peek'), { dependencies: ['triage'] });
    await t.runner.reload();
    await waitFor(() => personal().length === 2, 10_000, 'broken again: a new notification');

    // The same for a live change the reload refuses.
    const eng = join(t.dir, 'company', 'domains', 'eng');
    const live = () => refused().filter((n) => n.payload.scope === "domain 'eng'" || n.payload.scope === 'eng');
    writeCartridge(eng, 'second', alerting('second'), { dependencies: ['nobody'] });
    await assert.rejects(t.runner.reload());
    await assert.rejects(t.runner.reload());
    await waitFor(() => live().length === 1, 10_000, 'the refused change');
    rmSync(join(eng, 'cartridges', 'second'), { recursive: true });
    await t.runner.reload();
    writeCartridge(eng, 'second', alerting('second'), { dependencies: ['nobody'] });
    await assert.rejects(t.runner.reload());
    await waitFor(() => live().length === 2, 10_000, 'refused again after the fix: a new notification');
  });
});
