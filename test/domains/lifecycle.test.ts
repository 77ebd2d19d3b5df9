import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AuditLog } from '../../src/audit/index.js';
import { AutonomyMatrix, createDomainRunner, DomainLifecycle, type DomainRunner, MemberDirectory, PipelineValidationError, type Requester } from '../../src/domains/index.js';
import type { WeftNode } from '../../src/node/index.js';
import { type CartridgePackage, type CartridgeRuntime, createCartridgeRuntime } from '../../src/sovereignty/index.js';
import { silentLogger, systemClock } from '../../src/util/index.js';
import { startTestNode, waitFor } from '../helpers/node.js';
import { alerting, todo, writeCartridge, writeDomain } from './fixtures.js';

function pkg(name: string, source: string, extra: Record<string, unknown> = {}): CartridgePackage {
  return {
    manifest: { name, version: '1.0.0', author: 'ada', description: name, entryPoint: 'process', dependencies: [], consumes: ['*'], emits: ['domains.alert'], ...extra } as CartridgePackage['manifest'],
    source,
  };
}

interface Rig {
  node: WeftNode;
  dir: string;
  runner: DomainRunner;
  lifecycle: DomainLifecycle;
  members: MemberDirectory;
  matrix: AutonomyMatrix;
  audit: AuditLog;
  platform: CartridgeRuntime;
  ada: Requester;
  bob: Requester;
}

async function rig(setup: (dir: string) => void): Promise<Rig & { close: () => Promise<void> }> {
  const t = await startTestNode();
  setup(t.dir);
  const audit = new AuditLog({ store: t.node.ns.store });
  const members = new MemberDirectory({ store: t.node.ns.store, audit });
  await members.add('ada', { roles: { ops: 'admin' } });
  await members.add('bob', { roles: { ops: 'member' } });
  const matrix = new AutonomyMatrix(t.node.ns.store, { globalDefault: 'L3' });
  const runner = createDomainRunner({ dataDir: t.dir }, { node: t.node, logger: silentLogger, clock: systemClock, autonomy: matrix, rolesOf: (m) => members.find(m)?.roles });
  t.node.pipeline.replace([...t.node.pipeline.cartridges, runner.stage]);
  const platform = createCartridgeRuntime({ dataDir: t.dir, builtins: t.node.pipeline.order }, { node: t.node, logger: silentLogger, clock: systemClock });
  await platform.start();
  await runner.start();
  const lifecycle = new DomainLifecycle({
    dataDir: t.dir,
    runner,
    emitMany: (inputs) => t.node.emitMany(inputs),
    knowsEventType: (type) => t.node.catalog.has(type),
    autonomy: (q) => matrix.resolve(q),
    installDefault: 'L1',
    audit: (kind, details, ok) => audit.record(kind, null, details, ok),
    platform,
    memberExists: (name) => members.find(name) !== undefined,
  });
  const principal = (name: string): Requester => ({ kind: 'member', name, roles: members.get(name).roles });
  return {
    node: t.node,
    dir: t.dir,
    runner,
    lifecycle,
    members,
    matrix,
    audit,
    platform,
    ada: principal('ada'),
    bob: principal('bob'),
    close: async () => {
      await runner.stop();
      await platform.stop();
      await t.close();
    },
  };
}

const SUB = '[subscribe]\ndomains = []\nevents = ["domain.software-development.*"]\n';
const auditKinds = (r: Rig) => r.audit.entries({ limit: 1000 }).map((e) => e.kind);

describe('domain cartridge lifecycle', () => {
  const open: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of open) await c();
  });

  it("holds a member's submission for an admin at L1, installs an admin's own, and refuses a member's approval", async () => {
    const r = await rig((dir) => writeDomain(dir, 'ops', SUB));
    open.push(r.close);
    const sub = await r.lifecycle.submitToDomain('ops', pkg('bobs', alerting('from bob'), { consumes: ['domain.software-development.*'] }), r.bob);
    assert.equal(sub.state, 'submitted');
    assert.ok(existsSync(join(r.dir, 'company', 'domains', 'ops', 'incoming', 'bobs', 'manifest.json')));
    assert.equal(r.runner.pipelines.domains[0]?.cartridges.length, 0, 'nothing runs before the approval');
    await assert.rejects(r.lifecycle.answerSubmission({ domain: 'ops', cartridge: 'bobs' }, true, r.bob), { code: 'WEFT_FORBIDDEN' });
    const done = await r.lifecycle.answerSubmission({ domain: 'ops', cartridge: 'bobs' }, true, r.ada);
    assert.equal(done?.state, 'installed');
    assert.deepEqual(r.runner.pipelines.domains[0]?.levels, [['bobs']]);
    // An answer is about the package its notification named: a newer submission is not installed by it.
    await r.lifecycle.submitToDomain('ops', pkg('again', alerting('v1'), { consumes: ['domain.software-development.*'] }), r.bob);
    await r.lifecycle.submitToDomain('ops', pkg('again', alerting('v2 with other code'), { consumes: ['domain.software-development.*'], version: '1.0.1' }), r.bob);
    const submittedAgain = () => r.node.ns.notifications.list({ eventType: 'domains.cartridge.submitted', limit: 50 }).items.find((n) => n.payload.cartridge === 'again' && n.payload.version === '1.0.0');
    await waitFor(() => submittedAgain() !== undefined, 10_000, 'the first submission of again');
    const first = submittedAgain();
    await assert.rejects(r.lifecycle.answerSubmission(first?.payload ?? {}, true, r.ada), { code: 'WEFT_CONFLICT' });
    const own = await r.lifecycle.submitToDomain('ops', pkg('adas', alerting('from ada'), { consumes: ['domain.software-development.*'] }), r.ada);
    assert.equal(own.state, 'installed', "an admin's submission is its own approval");
    await r.node.emitMany([todo('l1')]);
    await waitFor(() => r.node.ns.notifications.list({ eventType: 'domains.alert' }).items.length === 2, 10_000, 'both cartridges to run');
    assert.deepEqual(
      ['domain.cartridge.submitted', 'domain.cartridge.installed'].filter((k) => auditKinds(r).includes(k)),
      ['domain.cartridge.submitted', 'domain.cartridge.installed'],
    );
    // Someone without a role in the domain cannot even submit.
    await r.members.add('eve');
    await assert.rejects(r.lifecycle.submitToDomain('ops', pkg('eves', alerting('x')), { kind: 'member', name: 'eve', roles: {} }), { code: 'WEFT_FORBIDDEN' });
  });

  it('a package submitted again after an admin refused it is a new notification an admin can approve; a repeat of one submission is not', async () => {
    const r = await rig((dir) => writeDomain(dir, 'ops', SUB));
    open.push(r.close);
    const submitted = () => r.node.ns.notifications.list({ eventType: 'domains.cartridge.submitted', limit: 50 }).items;
    const p = pkg('retry', alerting('retry'), { consumes: ['domain.software-development.*'] });
    assert.equal((await r.lifecycle.submitToDomain('ops', p, r.bob)).state, 'submitted');
    await waitFor(() => submitted().length === 1, 10_000, 'the first submission');
    assert.equal(await r.lifecycle.answerSubmission(submitted()[0]?.payload ?? {}, false, r.ada), undefined, 'refused');
    await r.node.ns.notifications.resolve(submitted()[0]?.id as number, { agentId: 'ada', resolution: { approved: false } });
    // Bob sends the same package again: the CLI tells him an admin approves it, so there must be something to approve.
    assert.equal((await r.lifecycle.submitToDomain('ops', p, r.bob)).state, 'submitted');
    await waitFor(() => submitted().length === 2, 10_000, 'the resubmission as a notification of its own');
    const again = submitted().find((n) => n.agentStatus !== 'resolved');
    assert.ok(again, 'open for an admin');
    assert.equal((await r.lifecycle.answerSubmission(again.payload, true, r.ada))?.state, 'installed');
    // The same submission delivered twice stays one notification.
    await r.node.emitMany([{ event: 'domains.cartridge.submitted', source: 'domains', domain: 'ops', payload: again.payload }]);
    await r.node.idle();
    assert.equal(submitted().length, 2);
  });

  it('installs a member submission at once when the matrix says L3 for cartridge.install in the domain, not for a rule about actions', async () => {
    const r = await rig((dir) => writeDomain(dir, 'ops', SUB));
    open.push(r.close);
    // A domain rule (and a cartridge rule) set the level of what cartridges emit, not of installs.
    await r.matrix.set({ domain: 'ops', level: 'L3' });
    await r.matrix.set({ domain: 'ops', cartridge: 'quick', level: 'L3' });
    const held = await r.lifecycle.submitToDomain('ops', pkg('quick', alerting('q'), { consumes: ['domain.software-development.*'] }), r.bob);
    assert.equal(held.state, 'submitted', 'a domain-level L3 does not let a member install');
    await r.matrix.set({ domain: 'ops', eventType: 'cartridge.install', level: 'L3' });
    const res = await r.lifecycle.submitToDomain('ops', pkg('quick', alerting('q'), { consumes: ['domain.software-development.*'] }), r.bob);
    assert.equal(res.state, 'installed');
    assert.equal(res.autonomy, 'L3');
  });

  it("the domain's guardian judges: the rule guardian and a guardian command both refuse, and the refusal is audited", async () => {
    const r = await rig((dir) => writeDomain(dir, 'ops', `${SUB}[guardian]\ncommand = "node -e \\"process.stdout.write(JSON.stringify({approve: false, reason: 'not on my watch'}))\\""\n`));
    open.push(r.close);
    await assert.rejects(r.lifecycle.submitToDomain('ops', pkg('evil', 'function process(e) { return eval("e"); }', { consumes: ['domain.software-development.*'] }), r.ada), /guardian \(rules\) refused 'evil': uses eval\(/);
    await assert.rejects(r.lifecycle.submitToDomain('ops', pkg('nice', alerting('n'), { consumes: ['domain.software-development.*'] }), r.ada), /refused 'nice': not on my watch/);
    assert.equal(auditKinds(r).filter((k) => k === 'domain.cartridge.refused').length, 2);
  });

  it('refuses a submission that would not validate with its pipeline before judging it, and undoes an install the reload refuses', async () => {
    const r = await rig((dir) => writeDomain(dir, 'ops', `${SUB}[guardian]\nrules = false\n`));
    open.push(r.close);
    // The domain's scope (domains.alert, domain.ops.*) does not allow this type: refused before any judging or writing.
    await assert.rejects(r.lifecycle.submitToDomain('ops', pkg('loud', alerting('x'), { consumes: ['domain.software-development.*'], emits: ['system.worker.crashed'] }), r.ada), (err) => {
      assert.ok(err instanceof PipelineValidationError);
      assert.equal(err.problem, 'scope');
      return true;
    });
    // In scope but unknown to the catalog, and no rule guardian to say so: the reload refuses it and the install is undone.
    await assert.rejects(r.lifecycle.submitToDomain('ops', pkg('odd', alerting('x'), { consumes: ['domain.software-development.*'], emits: ['domain.ops.unheard'] }), r.ada), /emits 'domain.ops.unheard', which this node's event catalog does not know/);
    for (const name of ['loud', 'odd']) assert.ok(!existsSync(join(r.dir, 'company', 'domains', 'ops', 'cartridges', name)), `${name} is not left on disk`);
    await waitFor(() => r.node.ns.notifications.list({ eventType: 'domains.pipeline.refused' }).items.length === 1, 10_000, 'the refusal event');
    assert.equal(r.runner.pipelines.domains[0]?.cartridges.length, 0);
  });

  it('removes a cartridge only when nothing depends on it', async () => {
    const r = await rig((dir) => {
      const d = writeDomain(dir, 'ops', SUB);
      writeCartridge(d, 'base', alerting('base'));
      writeCartridge(d, 'top', alerting('top'), { dependencies: ['base'] });
    });
    open.push(r.close);
    await assert.rejects(r.lifecycle.remove('ops', 'base', r.ada), /'top' depend on it/);
    await assert.rejects(r.lifecycle.remove('ops', 'top', r.bob), { code: 'WEFT_FORBIDDEN' });
    await r.lifecycle.remove('ops', 'top', r.ada);
    assert.deepEqual(r.runner.pipelines.domains[0]?.levels, [['base']]);
    assert.ok(auditKinds(r).includes('domain.cartridge.removed'));
  });

  it('refuses a personal install for a member that does not exist (it would never run)', async () => {
    const r = await rig((dir) => writeDomain(dir, 'ops', SUB));
    open.push(r.close);
    await assert.rejects(r.lifecycle.installPersonal('ghost', pkg('mine', alerting('mine')), { kind: 'node' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'WEFT_NOT_FOUND');
      assert.match(err.message, /^there is no member 'ghost': add one first/);
      return true;
    });
    assert.equal(existsSync(join(r.dir, 'personal', 'ghost')), false, 'nothing written');
    assert.equal((await r.lifecycle.installPersonal('bob', pkg('mine', alerting('mine')), { kind: 'node' })).state, 'installed');
  });

  it('promotes personal → domain (a submission) → platform (pending activation)', async () => {
    const r = await rig((dir) => {
      writeDomain(dir, 'ops', SUB);
      const me = join(dir, 'personal', 'bob');
      mkdirSync(me, { recursive: true });
      writeCartridge(me, 'mine', alerting('mine'));
    });
    open.push(r.close);
    assert.equal(r.runner.pipelines.personal[0]?.scope, 'personal:bob');
    await assert.rejects(r.lifecycle.promote('personal:bob', 'mine', 'ops', r.ada), { code: 'WEFT_FORBIDDEN' });
    const up = await r.lifecycle.promote('personal:bob', 'mine', 'ops', r.bob);
    assert.equal(up.state, 'submitted', 'a member promoting into a domain at L1 waits for its admin');
    await r.lifecycle.answerSubmission({ domain: 'ops', cartridge: 'mine' }, true, r.ada);
    assert.deepEqual(r.runner.pipelines.domains[0]?.levels, [['mine']]);
    await assert.rejects(r.lifecycle.promote('ops', 'mine', 'platform', r.ada), { code: 'WEFT_FORBIDDEN' });
    const top = await r.lifecycle.promote('ops', 'mine', 'platform', { kind: 'node' });
    assert.equal(top.state, 'pending_activation');
    assert.equal(r.platform.registry.find('mine')?.status, 'pending_activation');
    assert.equal(r.platform.registry.find('mine')?.origin, 'domain:ops');
    assert.equal(r.node.ns.notifications.list({ eventType: 'domains.cartridge.promoted' }).items.length, 2);
  });
});
