/** The gate in one process: two assembled nodes over the memory provider, real SQLite and sandbox. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import { type AssembledNode, assembleNode } from '../../src/daemon/assemble.js';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import { attachSovereignty, publishedPayload, type AutonomyLevel, type Sovereignty } from '../../src/sovereignty/index.js';
import { MemoryNetwork, memoryProvider } from '../../src/transport/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { waitFor } from '../helpers/node.js';
import { tempDir } from '../helpers/tmp.js';
import { cartridge } from './fixtures.js';

interface Side {
  a: AssembledNode;
  sov: Sovereignty;
}

async function pair(root: string, net: MemoryNetwork, autonomy: AutonomyLevel, guardianCommand?: string) {
  const ids = Object.fromEntries(
    ['one', 'two'].map((c) => {
      mkdirSync(join(root, c), { recursive: true });
      return [c, loadOrCreateIdentity(join(root, c, 'identity.key')).identity.nodeId];
    }),
  );
  const open = async (c: 'one' | 'two'): Promise<Side> => {
    const other = c === 'one' ? 'two' : 'one';
    const a = await assembleNode({
      dataDir: join(root, c),
      computer: c,
      cluster: 'pair',
      mesh: {
        provider: memoryProvider({ network: net, computer: c }),
        peers: [{ computer: other, cluster: 'pair', nodeId: ids[other] as string, trustLevel: 'peer', origin: 'static' }],
        options: { resendAfterMs: 300 },
      },
    });
    const sov = await attachSovereignty(
      { dataDir: join(root, c), autonomy, ...(guardianCommand ? { guardianCommand } : {}) },
      { node: a.node, logger: silentLogger, clock: a.node.clock },
    );
    await a.start();
    await sov.start();
    return { a, sov };
  };
  const close = async (s: Side) => {
    await s.sov.gate.stop();
    await s.a.stop();
    await s.sov.stop();
  };
  return { open, close };
}

const pending = (s: Side) => s.a.node.ns.notifications.list({ eventType: 'cartridge.install_pending' }).items;
const pkg = cartridge('tagger', 'function process(e) { return e; }', { consumes: ['mesh.test.ping'] });

test('an approval committed before the node stopped (its hook not run yet) is applied at the next start, and the publication is decided once', async () => {
  const t = tempDir('weft-gate-');
  const p = await pair(t.dir, new MemoryNetwork(), 'L1');
  const one = await p.open('one');
  let two = await p.open('two');
  try {
    await one.a.node.emit({ event: 'cartridge.published', payload: publishedPayload(pkg) });
    await waitFor(() => pending(two).length === 1, 10_000, 'install_pending');
    assert.equal(two.sov.gate.list()[0]?.state, 'awaiting_human');
    // the resolution commits, then the node stops before the hook runs (a kill -9: test/mesh/gate-crash.test.ts)
    const n = pending(two)[0];
    assert.ok(n);
    await two.a.node.ns.notifications.resolve(n.id, { resolution: { approved: true } });
    await p.close(two);
    two = await p.open('two');
    assert.equal(two.sov.runtime.registry.get('tagger').status, 'pending_activation');
    assert.equal(two.sov.gate.list()[0]?.state, 'installed');
    // a repeated publication after the restart is the same publication: nothing new
    await one.a.node.emit({ event: 'cartridge.published', payload: publishedPayload(pkg) });
    await one.a.node.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'after' } });
    await waitFor(() => two.a.node.ns.notifications.list({ eventType: 'mesh.test.ping' }).items.length === 1, 10_000, 'ping');
    await two.sov.gate.idle();
    assert.equal(pending(two).length, 1);
    assert.equal(two.sov.gate.list().length, 1);
    assert.equal(two.a.node.ns.notifications.list({ eventType: 'cartridge.installed' }).items.length, 1);
    // the publisher does not install its own publication
    assert.equal(one.sov.runtime.registry.find('tagger'), undefined);
    assert.equal(one.sov.gate.list().length, 0);
  } finally {
    await p.close(one);
    await p.close(two);
    t.cleanup();
  }
});

test('an invalid package from a peer is refused with a notification naming the field, and nothing is installed', async () => {
  const t = tempDir('weft-gate-');
  const p = await pair(t.dir, new MemoryNetwork(), 'L3');
  const one = await p.open('one');
  const two = await p.open('two');
  try {
    // the catalog accepts any version string; the package rules want a semantic version
    await one.a.node.emit({ event: 'cartridge.published', payload: { ...publishedPayload(pkg), version: 'v1', name: 'broken' } });
    await waitFor(() => two.sov.gate.list()[0]?.state === 'failed', 10_000, 'refused');
    const failed = two.a.node.ns.notifications.list({ eventType: 'system.cartridge.failed' }).items;
    assert.equal(failed.length, 1);
    assert.match(String(failed[0]?.payload.error), /broken v1 from one: the published package is invalid: manifest\.version/);
    assert.equal(two.sov.runtime.registry.find('broken'), undefined);
  } finally {
    await p.close(one);
    await p.close(two);
    t.cleanup();
  }
});

test('a publication a cartridge emitted (source cartridge:*) is refused by the receiving gate, even at L3, and nothing is installed', async () => {
  const t = tempDir('weft-gate-');
  const p = await pair(t.dir, new MemoryNetwork(), 'L3');
  const one = await p.open('one');
  const two = await p.open('two');
  try {
    // what an activated cartridge of `one` would have emitted before the rule: public, signed by `one`
    await one.a.node.emit({ event: 'cartridge.published', source: 'cartridge:evil', payload: publishedPayload(pkg) });
    await waitFor(() => two.sov.gate.list()[0]?.state === 'failed', 10_000, 'refused');
    assert.match(String(two.sov.gate.list()[0]?.reason), /emitted by a cartridge \(source 'cartridge:evil'\), not published by the node's operator/);
    await waitFor(() => two.a.node.ns.notifications.list({ eventType: 'system.cartridge.failed' }).items.length === 1, 10_000, 'the refusal raised');
    const [failed] = two.a.node.ns.notifications.list({ eventType: 'system.cartridge.failed' }).items;
    assert.match(String(failed?.payload.error), /tagger 1\.0\.0 from one: refused: it was emitted by a cartridge/);
    await two.sov.gate.idle();
    assert.equal(two.sov.runtime.registry.find('tagger'), undefined);
    assert.equal(two.a.node.ns.notifications.list({ eventType: 'cartridge.installed' }).items.length, 0);
    // the operator's own publication of the same package still goes through
    await one.a.node.emit({ event: 'cartridge.published', payload: { ...publishedPayload(pkg), version: '1.0.1' } });
    await waitFor(() => two.sov.runtime.registry.find('tagger')?.version === '1.0.1', 10_000, 'the real publication installed');
  } finally {
    await p.close(one);
    await p.close(two);
    t.cleanup();
  }
});

test("a peer's publication does not replace this node's own pending cartridge of that name without a human; the request says it would replace it", async () => {
  const t = tempDir('weft-gate-');
  const p = await pair(t.dir, new MemoryNetwork(), 'L3');
  const one = await p.open('one');
  const two = await p.open('two');
  try {
    const mine = cartridge('tagger', 'function process(e) { e.payload.mine = true; return e; }', { consumes: ['mesh.test.ping'], version: '1.0.0' });
    await two.sov.runtime.install(mine, { origin: 'local' });
    await one.a.node.emit({ event: 'cartridge.published', payload: publishedPayload(cartridge('tagger', 'function process(e) { return null; }', { consumes: ['mesh.test.ping'], version: '1.1.0' })) });
    await waitFor(() => pending(two).length === 1, 10_000, 'the human asked');
    const c = two.sov.runtime.registry.get('tagger');
    assert.deepEqual([c.origin, c.version, c.status], ['local', '1.0.0', 'pending_activation'], 'the local cartridge is untouched, although the autonomy is L3');
    assert.equal(two.sov.gate.list()[0]?.state, 'awaiting_human');
    const n = pending(two)[0];
    assert.ok(n);
    assert.deepEqual(n.payload.replaces, { origin: 'local', version: '1.0.0', status: 'pending_activation' });
    assert.match(n.description, /install cartridge tagger 1\.1\.0 from one\? Approving REPLACES tagger 1\.0\.0 \(pending_activation\), installed from this node \(origin local\)/);
    assert.match(String(n.payload.reason), /it would replace tagger 1\.0\.0/);
    // the human says yes, knowing: now it is replaced
    await two.a.node.ns.notifications.resolve(n.id, { resolution: { approved: true } });
    await two.sov.onApproved(n.id, true);
    const after = two.sov.runtime.registry.get('tagger');
    assert.deepEqual([after.origin, after.version], [one.a.node.self.nodeId, '1.1.0']);
  } finally {
    await p.close(one);
    await p.close(two);
    t.cleanup();
  }
});

test('approving an upgrade over an active version says why it cannot install and leaves the request open; the request says it is an upgrade', async () => {
  const t = tempDir('weft-gate-');
  const p = await pair(t.dir, new MemoryNetwork(), 'L1');
  const one = await p.open('one');
  const two = await p.open('two');
  const { app } = await buildApi({ token: 'tok' }, { node: two.a.node, logger: silentLogger, onApproved: (id, ok) => two.sov.onApproved(id, ok) });
  const resolve = (id: number, payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: `/api/notifications/${id}/resolve`, headers: { authorization: 'Bearer tok' }, payload });
  const watcher = (version: string, body: string) => cartridge('watcher', `function process(e) { ${body} return e; }`, { consumes: ['mesh.test.ping'], version });
  const waiting = (version: string) => pending(two).filter((n) => n.payload.version === version && n.agentStatus !== 'resolved');
  try {
    await one.a.node.emit({ event: 'cartridge.published', payload: publishedPayload(watcher('1.0.0', '')) });
    await waitFor(() => waiting('1.0.0').length === 1, 10_000, 'the first request');
    const first = await resolve((waiting('1.0.0')[0] as { id: number }).id, { approve: true });
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(two.sov.runtime.registry.get('watcher').status, 'pending_activation', 'installed before the answer returned');
    await two.sov.runtime.activate('watcher');

    // 1.1.0 while 1.0.0 is active: the request says so up front
    await one.a.node.emit({ event: 'cartridge.published', payload: publishedPayload(watcher('1.1.0', 'e.payload.v = 2;')) });
    await waitFor(() => waiting('1.1.0').length === 1, 10_000, 'the upgrade request');
    const n = waiting('1.1.0')[0] as { id: number; description: string; payload: Record<string, unknown> };
    assert.match(n.description, /Note: it is an upgrade over watcher 1\.0\.0, which is active here: approving installs it only once that one is rejected \(weft cartridges reject watcher\)/);
    // approving now fails, saying why, and the request stays open
    const refused = await resolve(n.id, { approve: true });
    assert.equal(refused.statusCode, 409, refused.body);
    assert.match(JSON.parse(refused.body).error.message, new RegExp(`cartridge 'watcher' 1\\.0\\.0 is active: reject it before installing 1\\.1\\.0; install request ${n.id} stays open`));
    assert.notEqual(two.a.node.ns.notifications.get(n.id).agentStatus, 'resolved', 'not resolved');
    assert.equal(two.sov.gate.list().find((g) => g.version === '1.1.0')?.state, 'awaiting_human');
    assert.equal(two.sov.runtime.registry.get('watcher').version, '1.0.0');
    // once the old one is rejected, the same request installs it
    await two.sov.runtime.reject('watcher');
    const ok = await resolve(n.id, { approve: true });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(JSON.parse(ok.body).agentStatus, 'resolved');
    const c = two.sov.runtime.registry.get('watcher');
    assert.deepEqual([c.version, c.status], ['1.1.0', 'pending_activation']);
  } finally {
    await app.close();
    await p.close(one);
    await p.close(two);
    t.cleanup();
  }
});

test("an answer given as --resolution '{\"approved\":true}' installs at once, as --approve does; approved:false refuses", async () => {
  const t = tempDir('weft-gate-');
  const p = await pair(t.dir, new MemoryNetwork(), 'L1');
  const one = await p.open('one');
  const two = await p.open('two');
  const { app } = await buildApi({ token: 'tok' }, { node: two.a.node, logger: silentLogger, onApproved: (id, ok) => two.sov.onApproved(id, ok) });
  const resolve = (id: number, payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: `/api/notifications/${id}/resolve`, headers: { authorization: 'Bearer tok' }, payload });
  try {
    const yes = cartridge('yes', 'function process(e) { return e; }', { consumes: ['mesh.test.ping'] });
    const no = cartridge('no', 'function process(e) { return e; }', { consumes: ['mesh.test.ping'] });
    await one.a.node.emitMany([yes, no].map((c) => ({ event: 'cartridge.published', payload: publishedPayload(c) })));
    await waitFor(() => pending(two).length === 2, 10_000, 'two requests');
    const idOf = (name: string) => (pending(two).find((n) => n.payload.name === name) as { id: number }).id;
    const r = await resolve(idOf('yes'), { resolution: { approved: true } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(two.sov.runtime.registry.get('yes').status, 'pending_activation', 'installed by the answer, not at the next restart');
    assert.equal(two.sov.gate.list().find((g) => g.name === 'yes')?.state, 'installed');
    const r2 = await resolve(idOf('no'), { resolution: { approved: false } });
    assert.equal(r2.statusCode, 200, r2.body);
    assert.equal(two.sov.gate.list().find((g) => g.name === 'no')?.state, 'rejected');
    assert.equal(two.sov.runtime.registry.find('no'), undefined);
  } finally {
    await app.close();
    await p.close(one);
    await p.close(two);
    t.cleanup();
  }
});

test('stopping the gate kills a guardian command still judging (its process group) and leaves the publication queued for the next start', async () => {
  const t = tempDir('weft-gate-');
  const pidFile = join(t.dir, 'sleep.pid');
  // the guardian's own child is in its process group: it must go too
  const net = new MemoryNetwork();
  const p = await pair(t.dir, net, 'L2', `sleep 100 & echo $! > '${pidFile}'; wait; echo '{"approve": true, "reason": "late"}'`);
  const one = await p.open('one');
  let two: Side | undefined = await p.open('two');
  try {
    await one.a.node.emit({ event: 'cartridge.published', payload: publishedPayload(pkg) });
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 10_000, 'the guardian judging');
    const sleeper = Number(readFileSync(pidFile, 'utf8').trim());
    const t0 = Date.now();
    await two.sov.gate.stop();
    assert.ok(Date.now() - t0 < 5_000, `stop took ${Date.now() - t0} ms: it waited for the guardian`);
    const alive = () => {
      try {
        process.kill(sleeper, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(() => !alive(), 5_000, 'the guardian process group killed');
    assert.equal(two.sov.gate.list()[0]?.state, 'queued', 'no verdict recorded: decided at the next start');
    assert.equal(pending(two).length, 0, 'nobody was asked on a refusal that was only a stop');
    await p.close(two);
    two = undefined;
    // the next start decides it (with a guardian that answers at once)
    const q = await pair(t.dir, net, 'L2', `echo '{"approve": true, "reason": "reviewed"}'`);
    const again = await q.open('two');
    try {
      await waitFor(() => again.sov.runtime.registry.find('tagger') !== undefined, 10_000, 'installed at the next start');
      assert.equal(again.sov.gate.list()[0]?.state, 'installed');
    } finally {
      await q.close(again);
    }
  } finally {
    if (two) await p.close(two);
    await p.close(one);
    t.cleanup();
  }
});
